/**
 * The closed lists and defaults of the training options, in a module of their own that loads
 * no tfjs, so the CLI checks and documents its flags without loading the model code.
 */

/** What early stopping (and the plateau schedule) watch. Without a validation split: the training loss or accuracy. */
export const MONITORS = ['val_loss', 'val_acc'] as const;
export type Monitor = (typeof MONITORS)[number];

/** Learning-rate schedules: constant, halved on a plateau of the monitored figure, or a cosine over the epochs. */
export const LR_SCHEDULES = ['none', 'plateau', 'cosine'] as const;
export type LrSchedule = (typeof LR_SCHEDULES)[number];

/**
 * The default minimum improvement. Measured (docs/training.md): on the 24-video 3-class task the
 * validation loss falls below 0.01 within a few epochs and then creeps down in the 4th-5th
 * decimal; 1e-3 stops it there, while on the held-out order tasks (whose loss moves by more
 * than 1e-2 an epoch while it learns) it stops no earlier and loses no accuracy.
 */
export const DEFAULT_MIN_DELTA = 1e-3;
/** The default schedule, by measurement (docs/training.md). */
export const DEFAULT_LR_SCHEDULE: LrSchedule = 'none';

/** `--class-weight` values: none, or scikit-learn's `balanced` (n / (C * n_c)). */
export const CLASS_WEIGHTS = ['none', 'balanced'] as const;

/** Why a head stopped: the early stop (or the last epoch), the best epoch and its monitored value. */
export interface StopInfo {
  /** `early`: no improvement over `minDelta` for `patience` epochs; `epochs`: the last epoch was reached. */
  reason: 'early' | 'epochs';
  /** The epoch it stopped after. */
  epoch: number;
  /** The figure watched (`loss`/`acc` when there was no validation split). */
  monitor: string;
  /** The kept (best) epoch and its monitored value. */
  bestEpoch: number;
  best: number;
  minDelta: number;
  patience: number;
}

/** The end line's words: why a head stopped. */
export function stopMessage(stop: StopInfo): string {
  const best = `best ${stop.monitor} ${stop.best.toFixed(4)} at epoch ${stop.bestEpoch}`;
  return stop.reason === 'early'
    ? `stopped early after epoch ${stop.epoch}: no improvement over ${stop.minDelta} for ${stop.epoch - stop.bestEpoch} epochs (patience ${stop.patience}); ${best}`
    : `ran all ${stop.epoch} epochs; ${best}`;
}
