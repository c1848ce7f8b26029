/**
 * Starts one DynamoDB Local for the whole run; every test file creates its
 * own uniquely named table in it (see `table.ts`). Meanwhile the stack's
 * template is synthesized once into the cache the local runtime reads
 * (local/template/source.ts), so the runtimes the tests start do not each
 * synthesize it on a fresh clone, and the CLI and runtime bundle is built
 * (bin/bundle.js), so the first files' processes do not all build it at once.
 */
import type { TestProject } from 'vitest/node';
import { bundleDir } from '../../bin/bundle.js';
import { startDynamoDbLocal, type DynamoDbLocal } from '../../local/dynamodb-local.ts';
import { loadTemplate } from '../../local/template/source.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamodbEndpoint: string;
  }
}

let ddb: DynamoDbLocal | undefined;

export async function setup(project: TestProject): Promise<void> {
  [ddb] = await Promise.all([startDynamoDbLocal(), loadTemplate({}), bundleDir()]);
  project.provide('dynamodbEndpoint', ddb.endpoint);
}

export async function teardown(): Promise<void> {
  await ddb?.stop();
}
