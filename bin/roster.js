#!/usr/bin/env node
// The `roster` CLI. The project ships TypeScript sources; tsx runs them directly.
import { register } from 'tsx/esm/api';

register();
await import('../client/cli.ts');
