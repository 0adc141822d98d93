// Quick replies' variables: {{visitor.name}}, {{operator.name}}, {{project.name}} and a
// custom param {{params.<name>}} - the grammar operator-registry checks when a template is
// saved (domain.TEMPLATE_VARIABLE). Pure: no DOM, so the editor's preview and the
// composer fill a text the same way.

const VARIABLE = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** The variable names in `text`, each once, in order of appearance. */
export function variables(text) {
  return [...new Set([...String(text).matchAll(VARIABLE)].map((m) => m[1]))];
}

/** The value of one variable in `context` ({visitor: {name}, operator: {name},
 *  project: {name}, params: {...}}): a non-blank string, or null when it is missing. */
export function valueOf(name, context) {
  const dot = name.indexOf('.');
  if (dot < 0) return null;
  const scope = context[name.slice(0, dot)];
  const value = scope ? scope[name.slice(dot + 1)] : null;
  return typeof value === 'string' && value.trim() ? value.trim() : null;
}

/** `text` with every variable replaced: from `given` (what the operator typed for a
 *  missing one) first, then from `context`. `missing` lists those that had neither;
 *  they stay in the text as written. */
export function fill(text, context, given = {}) {
  const missing = [];
  const out = String(text).replace(VARIABLE, (whole, name) => {
    const value = (typeof given[name] === 'string' && given[name].trim()) ? given[name].trim() : valueOf(name, context);
    if (value === null) {
      if (!missing.includes(name)) missing.push(name);
      return whole;
    }
    return value;
  });
  return { text: out, missing };
}
