/**
 * The tests spawn the local runtime as a real child process with the same
 * module `roster bench` uses (local/spawn.ts): it waits for the ready lines,
 * passes `--dynamodb-endpoint` (e.g. `inject('dynamodbEndpoint')`) with a
 * table of its own, and kills every runtime still alive when the test process
 * exits. Call `stop()` in `afterAll`.
 */
export { REPO_ROOT, runtimeArgs, spawnRuntime, type SpawnRuntimeOptions, type SpawnedRuntime } from '../../local/spawn.ts';
