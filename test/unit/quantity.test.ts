import { describe, expect, it } from 'vitest';
import { canonicalQuantity, compareQuantities, minQuantity, parseQuantity, quantitiesEqual } from '../../src/compile/quantity.js';

/** i thousandths written as a plain decimal: 700 -> "0.7", 2000 -> "2", 12345 -> "12.345". */
function decimal(i: number): string {
  const whole = Math.floor(i / 1000);
  const frac = String(i % 1000).padStart(3, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : String(whole);
}

/**
 * What the API server answers for it, worked out independently: whole numbers as written, else millis;
 * except that Kubernetes keeps a non-zero whole part with exactly three decimals ("12.345") as written
 * (its parse-time "already canonical" check; kubernetes/kubernetes#138165).
 */
function serverForm(i: number): string {
  if (i % 1000 === 0) return String(i / 1000);
  if (i >= 1000 && i % 10 !== 0) return decimal(i);
  return `${i}m`;
}

describe('quantities: every milli-step from 0.001 to 64', () => {
  it('equals its canonical form, canonicalises to the server form, and is ordered against its neighbour', () => {
    const problems: string[] = [];
    let previous: string | undefined;
    for (let i = 1; i <= 64_000; i++) {
      const q = decimal(i);
      const server = serverForm(i);
      if (canonicalQuantity(q) !== server) problems.push(`canonicalQuantity(${q}) = ${canonicalQuantity(q)}, want ${server}`);
      if (!quantitiesEqual(q, server)) problems.push(`${q} != ${server}`);
      if (!quantitiesEqual(q, `${i}m`)) problems.push(`${q} != ${i}m`);
      if (compareQuantities(server, q) !== 0) problems.push(`compare(${server}, ${q}) != 0`);
      if (canonicalQuantity(server) !== server) problems.push(`canonicalQuantity(${server}) = ${canonicalQuantity(server)}`);
      if (canonicalQuantity(`${i}m`) !== `${i}m` && canonicalQuantity(`${i}m`) !== server) problems.push(`canonicalQuantity(${i}m) = ${canonicalQuantity(`${i}m`)}`);
      if (previous !== undefined) {
        if (quantitiesEqual(previous, q)) problems.push(`${previous} == ${q}`);
        if (compareQuantities(previous, q) !== -1) problems.push(`compare(${previous}, ${q}) != -1`);
        if (compareQuantities(q, previous) !== 1) problems.push(`compare(${q}, ${previous}) != 1`);
        if (minQuantity(previous, q) !== previous || minQuantity(q, previous) !== previous) problems.push(`min(${previous}, ${q})`);
      }
      previous = q;
      if (problems.length > 20) break;
    }
    expect(problems).toEqual([]);
  });

  it('gets the values floating point gets wrong', () => {
    for (const [q, server] of [['0.7', '700m'], ['0.35', '350m'], ['1.4', '1400m'], ['2.3', '2300m'], ['2', '2'], ['2.5', '2500m'], ['0.1', '100m'], ['12.3', '12300m'], ['0.345', '345m'], ['12.345', '12.345']] as const) {
      expect(quantitiesEqual(q, server)).toBe(true);
      expect(canonicalQuantity(q)).toBe(server);
    }
    expect(quantitiesEqual('0.1', '0.10000000000000001')).toBe(false);
    expect(parseQuantity('0.7')).toEqual({ num: 7n, den: 10n });
    expect(parseQuantity('700m')).toEqual({ num: 7n, den: 10n });
  });
});

describe('quantities: memory and other suffixes', () => {
  it('compares binary and decimal suffixes exactly', () => {
    expect(quantitiesEqual('1.5Gi', '1536Mi')).toBe(true);
    expect(quantitiesEqual('1024Mi', '1Gi')).toBe(true);
    expect(quantitiesEqual('1Gi', '1G')).toBe(false);
    expect(compareQuantities('1G', '1Gi')).toBe(-1);
    expect(quantitiesEqual('20000M', '20G')).toBe(true);
    expect(quantitiesEqual('1e3', '1k')).toBe(true);
    expect(quantitiesEqual('1E3', '1000')).toBe(true);
    expect(quantitiesEqual('1E', '1e18')).toBe(true);
    expect(quantitiesEqual('1e-3', '1m')).toBe(true);
    expect(quantitiesEqual('1e+3', '1k')).toBe(true);
    expect(quantitiesEqual('1.5e3', '1500')).toBe(true);
    expect(quantitiesEqual('1Ki', '1024')).toBe(true);
    expect(quantitiesEqual('1n', '0.000000001')).toBe(true);
    expect(quantitiesEqual('1u', '1000n')).toBe(true);
    expect(quantitiesEqual('1T', '1000G')).toBe(true);
    expect(quantitiesEqual('1P', '1000T')).toBe(true);
    expect(quantitiesEqual('1Ti', '1024Gi')).toBe(true);
    expect(quantitiesEqual('1Pi', '1024Ti')).toBe(true);
    expect(quantitiesEqual('1Ei', '1024Pi')).toBe(true);
    expect(compareQuantities('128Mi', '512Mi')).toBe(-1);
    expect(compareQuantities('2Gi', '512Mi')).toBe(1);
  });

  it('accepts the whole number grammar: signs, .5, 5.', () => {
    expect(quantitiesEqual('.5', '500m')).toBe(true);
    expect(quantitiesEqual('5.', '5')).toBe(true);
    expect(quantitiesEqual('+1', '1')).toBe(true);
    expect(quantitiesEqual('-0', '0')).toBe(true);
    expect(quantitiesEqual('0.000', '0Gi')).toBe(true);
    expect(compareQuantities('-1', '0')).toBe(-1);
    expect(compareQuantities('-1Gi', '-1G')).toBe(-1);
    expect(parseQuantity('-1.5Ki')).toEqual({ num: -1536n, den: 1n });
    expect(parseQuantity('0Mi')).toEqual({ num: 0n, den: 1n });
  });

  it('keeps huge values exact', () => {
    expect(parseQuantity('8Ei')).toEqual({ num: 2n ** 63n, den: 1n });
    expect(compareQuantities('8Ei', '9223372036854775807')).toBe(1);
    expect(quantitiesEqual('8Ei', '9223372036854775808')).toBe(true);
    expect(quantitiesEqual('16Ei', '18446744073709551616')).toBe(true);
    expect(compareQuantities('16Ei', '18446744073709551615')).toBe(1);
    expect(quantitiesEqual('1000E', '1e21')).toBe(true);
    expect(compareQuantities('123456789012345678901234567890', '123456789012345678901234567891')).toBe(-1);
  });

  it('writes what the API server answers with', () => {
    const cases: Array<[string, string]> = [
      ['0.7', '700m'], ['4', '4'], ['1024Mi', '1Gi'], ['1.5Gi', '1536Mi'], ['1536Mi', '1536Mi'], ['0.5Gi', '512Mi'],
      ['20000M', '20G'], ['1.5G', '1500M'], ['1000', '1k'], ['1000m', '1'], ['1500m', '1500m'], ['100k', '100k'],
      ['1Ki', '1Ki'], ['100Ki', '100Ki'], ['2048Ki', '2Mi'], ['1032Ki', '1032Ki'], ['4Ei', '4Ei'],
      // binary below 1024 or not whole: decimal SI
      ['0.5Ki', '512'], ['1.5Ki', '1536'], ['1.1Ki', '1126400m'],
      // decimal exponent stays an exponent
      ['1e3', '1e3'], ['1000e0', '1e3'], ['1e5', '100e3'], ['1.5e3', '1500'], ['15e-1', '1500e-3'],
      // zero, and the server's own corners: sub-nano rounds away from zero, binary caps at 2^63-1, past E
      ['0', '0'], ['0Gi', '0'], ['0.000', '0'], ['0.1n', '1n'], ['1.5n', '2n'], ['-0.1n', '-1n'], ['1.0000000001', '1000000001n'],
      ['8Ei', '9223372036854775807'], ['-8Ei', '-9223372036854775807'], ['1000E', '1e21'], ['-1Gi', '-1Gi'], ['-2.5', '-2500m'],
      // a string that passes Kubernetes' "already canonical" check is answered as written
      ['1.001', '1.001'], ['1.000001', '1.000001'], ['1.441k', '1.441k'], ['1.08', '1080m'], ['0.001', '1m'],
      ['+1500m', '+1500m'], ['1.Ki', '1.Ki'], ['+2Gi', '+2Gi'], ['007', '007'], ['+2048Ki', '2Mi'],
    ];
    for (const [q, server] of cases) expect([q, canonicalQuantity(q)]).toEqual([q, server]);
    for (const [q, server] of cases) {
      if (!/n$|Ei$|^1\.0+1$/.test(q)) expect([q, server, quantitiesEqual(q, server)]).toEqual([q, server, true]);
    }
  });

  it('throws on non-quantities, and they are never equal', () => {
    for (const bad of ['abc', '1.2.3', '1Xi', '', ' 1', '1 ', '1e', 'e3', '1K', '1ki', 'Ki', '.', '-', '+', '1.5e1.5', '0x10', 'Infinity', 'NaN', '1e+', '1Gi ', '1,5', '--1', '1e99999']) {
      expect(() => parseQuantity(bad), bad).toThrow(/not a quantity/);
      expect(() => canonicalQuantity(bad), bad).toThrow(/not a quantity/);
      expect(() => compareQuantities(bad, '1'), bad).toThrow(/not a quantity/);
      expect(quantitiesEqual(bad, bad), bad).toBe(false);
      expect(quantitiesEqual(bad, '1'), bad).toBe(false);
      expect(quantitiesEqual('1', bad), bad).toBe(false);
    }
  });

  it('minQuantity returns the smaller as written', () => {
    expect(minQuantity('500m', '2')).toBe('500m');
    expect(minQuantity('512Mi', '0.25Gi')).toBe('0.25Gi');
    expect(minQuantity('1Gi', '1G')).toBe('1G');
    expect(minQuantity('0.5', '500m')).toBe('0.5');
  });
});
