import type { Command } from 'commander';
import { runTenantCreate, runTenantDelete, runTenantList } from '../../commands/tenants.js';
import { UsageError } from '../../errors.js';
import type { Io } from '../io.js';
import { dirOption, outputOption } from '../options.js';
import { addWriteOptions } from './admin.js';

/** `systemprompt cloud tenant create|list|delete`: tenants are files tenants/<name>.yaml. */
export function registerCloudCommands(program: Command, io: Io, setExit: (code: number) => void): void {
  const cloud = program.command('cloud').description('tenants, as files of the config repository');
  const tenant = cloud.command('tenant').description('create, list and delete tenants');

  addWriteOptions(
    tenant
      .command('create')
      .description('add a tenant: writes tenants/<name>.yaml with no users')
      .requiredOption('--name <name>', 'the tenant id: a DNS-1123 label, e.g. customer-a')
      .option('--display-name <text>', 'shown in Keycloak (default: the name)')
      .addOption(dirOption()),
  ).action(async (o: { name: string; displayName?: string; dryRun: boolean; commit: boolean; dir: string }) => setExit(await runTenantCreate(io, o)));

  tenant
    .command('list')
    .description('list tenants')
    .addOption(outputOption())
    .addOption(dirOption())
    .action(async (o: { output: 'text' | 'json'; dir: string }) => setExit(await runTenantList(io, o)));

  addWriteOptions(
    tenant
      .command('delete')
      .description("remove a tenant's file; the next apply plans the removal of its realm, namespace and (per deletion_policy) database")
      .argument('[name]', 'the tenant')
      .option('--name <name>', 'the tenant (same as the argument)')
      .option('--force', 'allow deleting the default tenant', false)
      .addOption(dirOption()),
  ).action(async (arg: string | undefined, o: { name?: string; force: boolean; dryRun: boolean; commit: boolean; dir: string }) => {
    const name = o.name ?? arg;
    if (name === undefined) throw new UsageError('which tenant? pass its name: systemprompt cloud tenant delete --name NAME');
    if (o.name !== undefined && arg !== undefined && o.name !== arg) throw new UsageError(`two different tenants named: ${arg} and --name ${o.name}`);
    setExit(await runTenantDelete(io, { ...o, name }));
  });
}
