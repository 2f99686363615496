// Writes jest's totals to .jest-results.json (or JEST_RESULTS_FILE), so that .ci/run can end with
// one line taken from jest's own results, `N passed, N failed`. A suite that fails to load counts
// as a failure.
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');

class ResultsReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
  }

  onRunComplete(_contexts, results) {
    const totals = {
      passed: results.numPassedTests,
      failed: results.numFailedTests + results.numRuntimeErrorTestSuites,
      skipped: results.numPendingTests + results.numTodoTests,
      suites: results.numTotalTestSuites,
    };
    writeFileSync(process.env.JEST_RESULTS_FILE || join(this.rootDir, '.jest-results.json'), JSON.stringify(totals) + '\n');
  }
}

module.exports = ResultsReporter;
