// The widths of the budget experiment (docs/results.md): the largest MeZO and Adam members of the MLP family at
// batch 64 under a memory budget, as the planner sizes them. Prints "MEZO_WIDTH ADAM_WIDTH".
//   npm run build && node scripts/experiment/budget-widths.mjs 160MiB
const root = new URL('../../dist/', import.meta.url);
const plan = await import(new URL('shared/plan/index.js', root).href);
const budgetBytes = plan.parseByteSize(process.argv[2] ?? '160MiB');
const fit = (method) => plan.largestInFamily(plan.MLP_FAMILY, 'width', method, { batch: 64, budgetBytes }).size;
console.log(fit('mezo'), fit('adam'));
