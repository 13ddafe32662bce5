export { checkDependencies } from './health';
export type { Check, DependencyState, HealthReport } from './health';
export { buildHealthApp, healthRoute } from './health-server';
export { DependenciesNotReadyError, DependencyGate } from './dependency-gate';
export type { DependencyGateOptions, WaitOptions } from './dependency-gate';
export { realTimers } from './timers';
export type { Timers } from './timers';
export { configOrExit, runService } from './run';
export type { Defer } from './run';
