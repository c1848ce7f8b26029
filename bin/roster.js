#!/usr/bin/env node
// The `roster` CLI. The project ships TypeScript sources; tsx runs them directly.
import { register } from 'tsx/esm/api';

// The pinned AWS SDK runs on Node 20; its notice about future releases is noise in a CLI.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
await import('../client/cli.ts');
