export {
  Counter,
  counterBy,
  counterOf,
  countsBy,
  createRegistry,
  Gauge,
  gaugeOf,
  Histogram,
  metricsRoute,
  Registry,
} from './registry';
