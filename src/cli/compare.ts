/**
 * `framewise compare <report1> <report2> ...`: the main metrics side by side, each report's
 * difference from the first, and a paired bootstrap 95% CI of the accuracy difference on the
 * videos the reports share (1000 resamples, seeded).
 */
import type { CAC } from 'cac';
import { UsageError } from '../errors.js';
import { intFlag, type Flags } from './common.js';

export function register(cli: CAC): void {
  cli
    .command(
      'compare <...reports>',
      'Compare eval reports: metrics side by side, with a bootstrap CI of the accuracy difference',
    )
    .option('--resamples <n>', 'Bootstrap resamples (default: 1000)')
    .option('--seed <n>', 'Seed of the bootstrap (default: 0)')
    .option('--json', 'Print the comparison as JSON')
    .example('framewise compare reports/mean reports/lstm')
    .action((reports: unknown, flags: Flags) =>
      runCompare((Array.isArray(reports) ? reports : [reports]).map(String), flags),
    );
}

async function runCompare(reports: string[], flags: Flags): Promise<number> {
  if (reports.length < 2)
    throw new UsageError('Give at least two report folders (or metrics.json files) to compare');
  const resamples = intFlag(flags, 'resamples') ?? 1000;
  const seed = intFlag(flags, 'seed', 0) ?? 0;
  const { compareReports, formatComparison } = await import('../index.js');
  const comparison = await compareReports(reports, { resamples, seed });
  process.stdout.write(
    flags.json === true ? `${JSON.stringify(comparison, null, 2)}\n` : formatComparison(comparison),
  );
  return 0;
}
