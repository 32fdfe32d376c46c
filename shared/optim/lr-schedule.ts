/**
 * Learning-rate schedules. The coefficient logged for a seed already carries the rate in force, so a replay
 * needs no schedule: any schedule is replay-safe.
 */
import { z } from 'zod';

const lrField = z.number().positive().finite();

const scheduleFields = {
  kind: z.enum(['constant', 'linear', 'cosine']).default('constant'),
  /** Final rate of a linear or cosine decay (default 0). */
  minLr: z.number().nonnegative().finite().default(0),
  /** Steps of linear warm-up from 0 to lr (default 0). */
  warmupSteps: z.number().int().nonnegative().default(0),
  /** Length of the decay (required by linear and cosine): the step at which the rate reaches minLr. */
  totalSteps: z.number().int().positive().optional(),
};

interface ScheduleFields {
  kind: 'constant' | 'linear' | 'cosine';
  /** Peak learning rate (after warm-up). */
  lr: number;
  minLr: number;
  warmupSteps: number;
  totalSteps?: number | undefined;
}

/** The checks the fields alone cannot express. */
function withChecks<T extends z.ZodType<ScheduleFields>>(schema: T): T {
  return schema
    .refine((s) => s.kind === 'constant' || s.totalSteps !== undefined, {
      message: 'totalSteps is required for linear and cosine schedules',
      path: ['totalSteps'],
    })
    .refine((s) => s.minLr <= s.lr, { message: 'minLr must not exceed lr', path: ['minLr'] })
    .refine((s) => s.totalSteps === undefined || s.warmupSteps <= s.totalSteps, {
      message: 'warmupSteps must not exceed totalSteps',
      path: ['warmupSteps'],
    });
}

/** A schedule that names its peak rate. */
export const lrScheduleSchema = withChecks(z.strictObject({ ...scheduleFields, lr: lrField }));

/**
 * A schedule whose peak rate defaults to `lr` — also when only other fields are given (`--schedule cosine`
 * alone keeps the command's default rate) — and which is the constant `lr` when absent.
 */
export function lrScheduleWithDefault(lr: number) {
  return withChecks(z.strictObject({ ...scheduleFields, lr: lrField.default(lr) })).prefault({});
}

export type LrSchedule = z.output<typeof lrScheduleSchema>;
export type LrScheduleInput = z.input<typeof lrScheduleSchema>;

/** The rate at step t (0-based). */
export function learningRateAt(schedule: LrSchedule, step: number): number {
  if (!Number.isInteger(step) || step < 0) throw new RangeError(`learningRateAt: step must be a non-negative integer, got ${step}`);
  const { lr, minLr, warmupSteps } = schedule;
  if (step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
  if (schedule.kind === 'constant') return lr;
  const span = Math.max(1, schedule.totalSteps! - warmupSteps);
  const progress = Math.min(1, (step - warmupSteps) / span);
  if (schedule.kind === 'linear') return lr + (minLr - lr) * progress;
  return minLr + 0.5 * (lr - minLr) * (1 + Math.cos(Math.PI * progress));
}
