/**
 * The manifest of a prepared model (manifest.json): everything an agent needs to feed the model and to trust
 * the slab it loads — layout, inputs, loss, and content hashes. Validated with zod on load, including the
 * layout invariants (aligned, in-bounds, non-overlapping tensors) that the schema alone cannot express.
 */
import { z } from 'zod';
import { ModelPreparationError } from './errors.js';
import { SLAB_ALIGNMENT } from './slab-layout.js';

export const MANIFEST_FORMAT = 'mezo-prepared-model';
export const MANIFEST_VERSION = 1;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256');
const count = z.number().int().nonnegative();
/** A dimension: a fixed size, a symbolic name ("batch"), or null when the model leaves it unknown. */
const dim = z.union([count, z.string(), z.null()]);

const inputSchema = z.object({
  name: z.string().min(1),
  elemType: z.string().min(1),
  shape: z.array(dim).nullable(),
});

const tensorSchema = z.object({
  name: z.string().min(1),
  shape: z.array(count),
  offset: count,
  length: count,
});

export const manifestSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    formatVersion: z.literal(MANIFEST_VERSION),
    opset: z.number().int().min(13),
    irVersion: count,
    loss: z.enum(['cross-entropy', 'mse', 'none']),
    /** The original graph output the loss head reads (null for loss 'none'). */
    lossOutput: z.string().nullable(),
    /** `labels` (int64 [batch]) for cross-entropy, `targets` (float, the output's shape) for mse. */
    labelInput: inputSchema.nullable(),
    /** Number of classes for cross-entropy when the output's class dimension is fixed (labels are checked). */
    classes: z.number().int().positive().nullable(),
    dataInputs: z.array(inputSchema),
    outputs: z.array(z.string().min(1)).min(1),
    alignment: z.literal(SLAB_ALIGNMENT),
    tensors: z.array(tensorSchema).min(1),
    slabLength: count,
    parameterCount: count,
    slabSha256: sha256,
    sourceSha256: sha256,
  })
  .superRefine((m, ctx) => {
    const seen = new Set<string>();
    let end = 0;
    let parameters = 0;
    m.tensors.forEach((t, i) => {
      const at = ['tensors', i];
      if (seen.has(t.name)) ctx.addIssue({ code: 'custom', path: [...at, 'name'], message: `duplicate tensor ${t.name}` });
      seen.add(t.name);
      if (t.length !== t.shape.reduce((a, b) => a * b, 1)) {
        ctx.addIssue({ code: 'custom', path: [...at, 'length'], message: `length ${t.length} is not the product of shape [${t.shape.join(', ')}]` });
      }
      if (t.offset % SLAB_ALIGNMENT !== 0) {
        ctx.addIssue({ code: 'custom', path: [...at, 'offset'], message: `offset ${t.offset} is not a multiple of ${SLAB_ALIGNMENT}` });
      }
      if (t.offset < end) {
        ctx.addIssue({ code: 'custom', path: [...at, 'offset'], message: `tensor ${t.name} overlaps the previous tensor` });
      }
      end = t.offset + t.length;
      parameters += t.length;
    });
    if (end > m.slabLength) {
      ctx.addIssue({ code: 'custom', path: ['slabLength'], message: `tensors end at ${end}, past slabLength ${m.slabLength}` });
    }
    if (parameters !== m.parameterCount) {
      ctx.addIssue({ code: 'custom', path: ['parameterCount'], message: `parameterCount ${m.parameterCount} but tensors hold ${parameters}` });
    }
    if ((m.loss === 'none') !== (m.labelInput === null)) {
      ctx.addIssue({ code: 'custom', path: ['labelInput'], message: `loss '${m.loss}' and labelInput disagree` });
    }
  });

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestInput = z.infer<typeof inputSchema>;
export type ManifestTensor = z.infer<typeof tensorSchema>;

/** Validates a parsed manifest; the error lists every problem with its path. */
export function parseManifest(value: unknown, source = 'manifest'): Manifest {
  const result = manifestSchema.safeParse(value);
  if (!result.success) {
    throw new ModelPreparationError(`${source} is invalid:\n${z.prettifyError(result.error)}`, { cause: result.error });
  }
  return result.data;
}
