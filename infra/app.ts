/**
 * The CDK app (`cdk.json`: `npx tsx infra/app.ts`). Settings come from
 * context, e.g. `npx cdk deploy -c sweepIntervalSeconds=2`; see `roster-app.ts`.
 */
import { App } from 'aws-cdk-lib';
import { addRoster } from './roster-app.ts';

addRoster(new App());
