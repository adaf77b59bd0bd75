import { Argument, Option, type Command } from 'commander';
import { runConfigShow, type ConfigSection } from '../../commands/config-show.js';
import { runUsersCreate, runUsersDelete, runUsersEdit, runUsersList, runUsersShow } from '../../commands/users.js';
import type { Io } from '../io.js';
import { dirOption, outputOption } from '../options.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Options every editing command takes. */
export function addWriteOptions(cmd: Command): Command {
  return cmd
    .option('--dry-run', 'show the change as a unified diff and write nothing', false)
    .option('--commit', 'git commit the changed files with a descriptive message', false)
    .addOption(outputOption());
}

/** `systemprompt admin users ...` and `admin config show`: edits of the config repository, the GitOps way. */
export function registerAdminCommands(program: Command, io: Io, setExit: (code: number) => void): void {
  const admin = program.command('admin').description('manage users and show settings (as edits of the config repository); read usage and audit');

  const users = admin.command('users').description('users of tenants: entries of users: in tenants/<name>.yaml');

  users
    .command('list')
    .description('list users (all tenants, or one)')
    .option('--tenant <tenant>', 'only this tenant')
    .addOption(outputOption())
    .addOption(dirOption())
    .action(async (o: { tenant?: string; output: 'text' | 'json'; dir: string }) => setExit(await runUsersList(io, o)));

  users
    .command('show')
    .description('one user: tenant, scopes, enabled, and the file and line it is defined at')
    .argument('<email>', 'the user (emails compare without case)')
    .option('--tenant <tenant>', 'the tenant, when the email is in several')
    .addOption(outputOption())
    .addOption(dirOption())
    .action(async (email: string, o: { tenant?: string; output: 'text' | 'json'; dir: string }) => setExit(await runUsersShow(io, { ...o, email })));

  addWriteOptions(
    users
      .command('create')
      .description('add a user to a tenant (the default tenant unless --tenant)')
      .requiredOption('--email <email>', 'the user, also its Keycloak username')
      .option('--scopes <scopes>', 'comma-separated scopes from the catalog, e.g. read,write', collect, [])
      .option('--tenant <tenant>', 'the tenant (default: tenancy.default_tenant)')
      .option('--disabled', 'create the user disabled', false)
      .addOption(dirOption()),
  ).action(async (o: { email: string; scopes: string[]; tenant?: string; disabled: boolean; dryRun: boolean; commit: boolean; dir: string }) =>
    setExit(await runUsersCreate(io, o)),
  );

  addWriteOptions(
    users
      .command('edit')
      .description("change a user's scopes, enabled state or tenant")
      .argument('<email>', 'the user (emails compare without case)')
      .option('--add-scope <scope>', 'grant a scope (repeatable, or comma-separated)', collect, [])
      .option('--remove-scope <scope>', 'revoke a scope (repeatable, or comma-separated)', collect, [])
      .option('--tenant <tenant>', 'the tenant holding the user; if the user is only in another tenant, move it here')
      .option('--move-to <tenant>', 'move the user to this tenant')
      .addOption(new Option('--enable', 'enable the user').conflicts('disable'))
      .addOption(new Option('--disable', 'disable the user (kept, cannot log in)').conflicts('enable'))
      .addOption(dirOption()),
  ).action(
    async (
      email: string,
      o: { addScope: string[]; removeScope: string[]; tenant?: string; moveTo?: string; enable?: boolean; disable?: boolean; dryRun: boolean; commit: boolean; dir: string },
    ) => setExit(await runUsersEdit(io, { ...o, email })),
  );

  addWriteOptions(
    users
      .command('delete')
      .description('remove a user from its tenant')
      .argument('<email>', 'the user (emails compare without case)')
      .option('--tenant <tenant>', 'the tenant, when the email is in several')
      .addOption(dirOption()),
  ).action(async (email: string, o: { tenant?: string; dryRun: boolean; commit: boolean; dir: string }) => setExit(await runUsersDelete(io, { ...o, email })));

  const config = admin.command('config').description('effective project settings');
  config
    .command('show')
    .description('effective settings with defaults filled in, and where each comes from (file:line, or default)')
    .addArgument(new Argument('<section>', 'what to show').choices(['tenancy', 'scopes']))
    .addOption(outputOption())
    .addOption(dirOption())
    .action(async (section: ConfigSection, o: { output: 'text' | 'json'; dir: string }) => setExit(await runConfigShow(io, { ...o, section })));

  // Read from the tenant's own database, with the credentials of its systemprompt-database Secret.
  admin
    .command('usage')
    .description("requests, denials and bytes per day, user and agent, as the gateway recorded them in the tenant's own database")
    .requiredOption('--tenant <tenant>', 'the tenant')
    .option('--user <user>', 'only this user (email or Keycloak user id)')
    .option('--since <when>', 'from this ISO date/time, or this long ago (30m, 24h, 7d); default 30 days')
    .addOption(outputOption())
    .addOption(dirOption())
    .action(async (o: { tenant: string; user?: string; since?: string; output: 'text' | 'json'; dir: string }) => {
      const { runUsage } = await import('../../commands/usage.js');
      setExit(await runUsage(io, o));
    });

  admin
    .command('audit')
    .description("the gateway's decisions about the tenant's users (who, agent, scopes required and held, allowed or denied, status), from the tenant's own database")
    .requiredOption('--tenant <tenant>', 'the tenant')
    .option('--user <user>', 'only this user (email or Keycloak user id)')
    .option('--since <when>', 'from this ISO date/time, or this long ago (30m, 24h, 7d); default 24 hours')
    .option('--limit <n>', 'the newest this many records, shown oldest first', (v: string) => Number(v), 100)
    .addOption(outputOption())
    .addOption(dirOption())
    .action(async (o: { tenant: string; user?: string; since?: string; limit: number; output: 'text' | 'json'; dir: string }) => {
      const { runAudit } = await import('../../commands/usage.js');
      setExit(await runAudit(io, o));
    });
}
