export { checkDependencies } from './health';
export type { Check, DependencyState, HealthReport } from './health';
export { buildHealthApp, healthRoute } from './health-server';
export { configOrExit, runService } from './run';
export type { Defer } from './run';
export { holdThroughOutages, pollingDependencies } from './outage';
export type { DependencyWatch } from './outage';
