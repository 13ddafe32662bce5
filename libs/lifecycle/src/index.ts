export { checkDependencies } from './health';
export type { Check, DependencyState, HealthReport } from './health';
export { buildHealthApp } from './health-server';
export { runService } from './run';
export type { RunningService } from './run';
