// A vitest reporter that writes the run's counts to `$FRAMEWISE_TEST_COUNTS` for scripts/test.mjs.
// A failure is a failed test, a file that failed outside its tests (an import or a set-up
// hook that threw, which leaves its tests skipped), or an error no test caught.
import { writeFileSync } from 'node:fs';

export default class CountsReporter {
  onTestRunEnd(testModules, unhandledErrors) {
    let passed = 0;
    let failed = unhandledErrors.length;
    for (const module of testModules) {
      let failedTests = 0;
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed += 1;
        else if (state === 'failed') failedTests += 1;
      }
      failed += failedTests;
      if (failedTests === 0 && (module.state() === 'failed' || module.errors().length > 0)) failed += 1;
    }
    writeFileSync(process.env.FRAMEWISE_TEST_COUNTS, JSON.stringify({ passed, failed }));
  }
}
