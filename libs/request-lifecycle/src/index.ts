export {
  accept,
  defaultPolicy,
  isTerminal,
  policyFromSettings,
  slotOf,
  transition,
  LIFECYCLE_STATES,
  SLOT_MS,
  TIMER_KINDS,
} from './lifecycle';
export type {
  Effect,
  LifecycleEvent,
  LifecyclePolicy,
  LifecycleState,
  LifecycleView,
  Timer,
  TimerKind,
  Transition,
} from './lifecycle';
