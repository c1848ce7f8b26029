// Module resolution hook (node:module register): adds the `@roster/source` export condition,
// under which the workspace packages (@roster/client) resolve to their TypeScript sources.
export async function resolve(specifier, context, nextResolve) {
  return nextResolve(specifier, { ...context, conditions: [...context.conditions, '@roster/source'] });
}
