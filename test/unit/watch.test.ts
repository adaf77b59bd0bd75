import { describe, expect, it } from 'vitest';
import { relevant } from '../../src/commands/watch.js';

describe('apply --watch: which saved files start a round', () => {
  it('takes config files and leaves git, dependencies and editor droppings alone', () => {
    for (const f of ['tenants/a.yaml', 'services/agents/x.yaml', 'systemprompt.yaml', 'schemas/tenant.schema.json']) expect(relevant(f), f).toBe(true);
    for (const f of ['.git/index', '.git/refs/heads/main', 'node_modules/x/y.js', 'tenants/.a.yaml.swp', 'tenants/a.yaml~', 'tenants/.#a.yaml', 'tenants/a.yaml.swp']) expect(relevant(f), f).toBe(false);
  });
});
