// Six projects: unit tests sit next to the code they test (pure logic, no servers);
// integration, e2e and security tests under tests/ need the real servers started by infra/test.sh
// (security: hostile callers, forged results, slow and malformed clients); chaos restarts those
// servers, so infra/test.sh runs it alone, in a second jest run after the others; deploy checks the
// build, images, compose file, Kubernetes manifests and dashboards (no servers; its first run builds
// kustomize and kubeconform with Go, then reuses them from the cache dir).
/** @type {import('ts-jest').JestConfigWithTsJest} */
const transform = {
  '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
};
const moduleNameMapper = { '^@cxr/(.*)$': '<rootDir>/libs/$1/src/index.ts' };
const common = { testEnvironment: 'node', transform, moduleNameMapper, rootDir: __dirname };

module.exports = {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: [
        '<rootDir>/libs/*/src/**/*.test.ts',
        '<rootDir>/services/*/src/**/*.test.ts',
        '<rootDir>/infra/tools/**/*.test.ts',
      ],
    },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/tests/integration/**/*.test.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/tests/e2e/**/*.test.ts'] },
    { ...common, displayName: 'deploy', testMatch: ['<rootDir>/tests/deploy/**/*.test.ts'] },
    { ...common, displayName: 'security', testMatch: ['<rootDir>/tests/security/**/*.test.ts'] },
    { ...common, displayName: 'chaos', testMatch: ['<rootDir>/tests/chaos/**/*.test.ts'] },
  ],
};
