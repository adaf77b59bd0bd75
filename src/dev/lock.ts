import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConflictError } from '../errors.js';
import { isAlive } from './process.js';

/**
 * An exclusive lock file holding our pid, so two `dev up`/`dev down` never race on one stack.
 * A lock left by a process that is gone is taken over.
 */
export async function acquireLock(file: string): Promise<() => Promise<void>> {
  await mkdir(dirname(file), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(file, 'wx', 0o644);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return async () => {
        await unlink(file).catch(() => undefined);
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && (await isAlive(holder))) {
        throw new ConflictError(`another systemprompt (pid ${holder}) is starting or stopping this stack`, { hint: `wait for it to finish, or remove ${file} if that process is not systemprompt` });
      }
      await unlink(file).catch(() => undefined);
    }
  }
  throw new ConflictError(`could not take the stack lock ${file}`);
}
