/** `{{tenant_id}}` / `{{user_id}}` templates in scopes and names. */

const TEMPLATE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

export type TemplateVar = 'tenant_id' | 'user_id';

/** Variables a string uses, in order of appearance (duplicates kept out). */
export function templateVariables(s: string): string[] {
  const out: string[] = [];
  for (const m of s.matchAll(TEMPLATE)) if (!out.includes(m[1]!)) out.push(m[1]!);
  return out;
}

export function renderTemplate(s: string, vars: Partial<Record<TemplateVar, string>>): string {
  return s.replace(TEMPLATE, (whole, name: string) => vars[name as TemplateVar] ?? whole);
}

export function usesVariable(s: string, v: TemplateVar): boolean {
  return templateVariables(s).includes(v);
}
