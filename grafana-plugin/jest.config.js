// force timezone to UTC to allow tests to work regardless of local timezone
// generally used by snapshots, but can affect specific tests
process.env.TZ = 'UTC';

const base = require('./.config/jest.config');
const swc = base.transform['^.+\\.(t|j)sx?$'];

module.exports = {
  // Jest configuration provided by Grafana scaffolding
  ...base,
  // @grafana/data 12.4 pulls in d3-color 3.1.1, whose entry point is an ES
  // module with the .mjs extension: transform it like the other ES modules.
  transform: { ...base.transform, '^.+\\.mjs$': swc },
  // The component tests click through the real @grafana/ui selects; on a
  // busy 2-core CI machine one test can take several seconds.
  testTimeout: 30000,
};
