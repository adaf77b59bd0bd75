/**
 * Kubernetes resource quantities ("500m", "1.5Gi", "12e6"), parsed to exact rationals.
 *
 * Only integer (BigInt) arithmetic: "0.7" and the API server's "700m" are the same number here,
 * which floating point cannot promise. canonicalQuantity() writes a quantity the way the API server
 * hands it back for built-in types, so a plan can tell a rewritten spelling from a real change.
 */

/** An exact rational num/den: den > 0 and gcd(|num|, den) = 1 (so zero is 0/1). */
export interface Quantity {
  readonly num: bigint;
  readonly den: bigint;
}

/** How a quantity was written; Kubernetes writes it back in the same family. */
export type QuantityFormat = 'DecimalSI' | 'BinarySI' | 'DecimalExponent';

const DECIMAL_SI: Readonly<Record<string, number>> = { n: -9, u: -6, m: -3, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_SI: Readonly<Record<string, number>> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
/** Suffix for a power of ten that is a multiple of 3, and for a power of 1024. */
const DECIMAL_SUFFIX = new Map(Object.entries(DECIMAL_SI).map(([s, e]) => [e, s] as const)).set(0, '');
const BINARY_SUFFIX = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'] as const;

/**
 *  <quantity> ::= <sign>? <number> <suffix>?
 *  <number>   ::= <digits> | <digits>. | <digits>.<digits> | .<digits>
 *  <suffix>   ::= Ki | Mi | Gi | Ti | Pi | Ei | n | u | m | k | M | G | T | P | E | (e|E) <sign>? <digits>
 * ("1E" is exa, "1E3" a decimal exponent.)
 */
const GRAMMAR = /^([+-]?)(?:([0-9]+)(?:\.([0-9]*))?|\.([0-9]+))(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([numkMGTPE])|[eE]([+-]?[0-9]+))?$/;

/** No real quantity needs a larger decimal exponent; refusing it keeps the arithmetic small. */
const MAX_EXPONENT = 1000;

/** Kubernetes caps a binary-SI quantity at this magnitude when it parses one. */
const MAX_INT64 = 2n ** 63n - 1n;
const NANO = 10n ** 9n;

interface Parsed {
  negative: boolean;
  /** Digits before the point, as written (may be empty: ".5"). */
  intDigits: string;
  /** Digits after the point, as written (may be empty: "5." or "5"). */
  fracDigits: string;
  format: QuantityFormat;
  /** Power of ten (decimal formats) or of two (binary SI) that the suffix stands for. */
  exponent: number;
  value: Quantity;
}

function abs(x: bigint): bigint {
  return x < 0n ? -x : x;
}

function gcd(a: bigint, b: bigint): bigint {
  a = abs(a);
  b = abs(b);
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function rational(num: bigint, den: bigint): Quantity {
  if (den < 0n) [num, den] = [-num, -den];
  if (num === 0n) return { num: 0n, den: 1n };
  const g = gcd(num, den);
  return { num: num / g, den: den / g };
}

function parse(q: string): Parsed {
  const m = typeof q === 'string' ? GRAMMAR.exec(q) : null;
  if (!m) throw new Error(`not a quantity: ${JSON.stringify(q)}`);
  const [, sign, whole, wholeFrac, onlyFrac, binary, decimal, exp] = m;
  const intDigits = whole ?? '';
  const fracDigits = wholeFrac ?? onlyFrac ?? '';
  let format: QuantityFormat = 'DecimalSI';
  let exponent = 0;
  if (binary !== undefined) {
    format = 'BinarySI';
    exponent = BINARY_SI[binary]!;
  } else if (decimal !== undefined) {
    exponent = DECIMAL_SI[decimal]!;
  } else if (exp !== undefined) {
    format = 'DecimalExponent';
    exponent = Number(exp);
    if (Math.abs(exponent) > MAX_EXPONENT) throw new Error(`not a quantity (exponent out of range): ${JSON.stringify(q)}`);
  }
  const negative = sign === '-';
  let num = BigInt((intDigits + fracDigits) || '0') * (negative ? -1n : 1n);
  let den = 10n ** BigInt(fracDigits.length);
  if (format === 'BinarySI') num *= 2n ** BigInt(exponent);
  else if (exponent >= 0) num *= 10n ** BigInt(exponent);
  else den *= 10n ** BigInt(-exponent);
  return { negative, intDigits, fracDigits, format, exponent, value: rational(num, den) };
}

/** The exact value of a Kubernetes quantity; throws when `q` is not one. */
export function parseQuantity(q: string): Quantity {
  return parse(q).value;
}

function compare(a: Quantity, b: Quantity): number {
  const l = a.num * b.den;
  const r = b.num * a.den;
  return l < r ? -1 : l > r ? 1 : 0;
}

/** -1, 0 or 1 as `a` is less than, equal to or greater than `b`; throws when either is not a quantity. */
export function compareQuantities(a: string, b: string): number {
  return compare(parseQuantity(a), parseQuantity(b));
}

/** Whether two strings are the same quantity ("0.7" and "700m" are); false when either is not a quantity. */
export function quantitiesEqual(a: string, b: string): boolean {
  try {
    return compareQuantities(a, b) === 0;
  } catch {
    return false;
  }
}

/** The smaller of two quantities, as written (`a` when they are equal). */
export function minQuantity(a: string, b: string): string {
  return compareQuantities(a, b) <= 0 ? a : b;
}

/**
 * Kubernetes' quick check for "already canonical": when it passes, the API server keeps the string
 * exactly as written (sign, leading zeros and all) and answers with it. The check lets through some
 * strings that are not canonical, such as "12.345" (three decimals; kubernetes/kubernetes#138165).
 */
function keptAsWritten(p: Parsed): boolean {
  const digits = p.intDigits.replace(/^0+/, '') || '0';
  if (p.format === 'BinarySI') {
    // Integers with few enough digits for the suffix, not divisible by 8.
    if (p.fracDigits.length > 0 || 15 - digits.length - (p.exponent * 3) / 10 - 1 < 0) return false;
    return BigInt(digits) % 8n !== 0n;
  }
  const shifted = digits + p.fracDigits;
  const scale = p.exponent - p.fracDigits.length;
  if (shifted.length > 18 || scale < -9) return false;
  return scale % 3 === 0 && !shifted.endsWith('000') && !shifted.startsWith('0');
}

/** The value the API server keeps: finer than nano rounds away from zero, binary SI caps at 2^63-1. */
function storedValue(p: Parsed): Quantity {
  let { num, den } = p.value;
  const nanos = num * NANO;
  if (nanos % den !== 0n) {
    const away = nanos / den + (num < 0n ? -1n : 1n);
    ({ num, den } = rational(away, NANO));
  }
  if (p.format === 'BinarySI' && den === 1n && abs(num) > MAX_INT64) num = num < 0n ? -MAX_INT64 : MAX_INT64;
  return { num, den };
}

/** Mantissa and power of ten, the power a multiple of 3 and as large as keeps the mantissa whole. */
function decimalParts(v: Quantity): [bigint, number] {
  let scale = 1n;
  let exponent = 0;
  while (scale % v.den !== 0n) {
    scale *= 10n;
    exponent -= 1;
  }
  let mantissa = (v.num * scale) / v.den;
  while (mantissa % 10n === 0n) {
    mantissa /= 10n;
    exponent += 1;
  }
  while (exponent % 3 !== 0) {
    mantissa *= 10n;
    exponent -= 1;
  }
  return [mantissa, exponent];
}

function decimalString(v: Quantity, format: 'DecimalSI' | 'DecimalExponent'): string {
  const [mantissa, exponent] = decimalParts(v);
  const suffix = format === 'DecimalSI' ? DECIMAL_SUFFIX.get(exponent) : undefined;
  // Past "E" (or in exponent form) the power is written as an exponent.
  return `${mantissa}${suffix ?? (exponent === 0 ? '' : `e${exponent}`)}`;
}

/**
 * The string the Kubernetes API server answers with for quantity `q` in a built-in type
 * (resource.Quantity.String()): "0.7" -> "700m", "1024Mi" -> "1Gi", "1.5Gi" -> "1536Mi",
 * "20000M" -> "20G", "4" -> "4". It keeps the format family the quantity was written in (binary SI,
 * decimal SI or decimal exponent) and takes the largest suffix that leaves a whole mantissa; a binary
 * quantity below 1024 in magnitude or not a whole number is written in decimal SI. Like the server, it
 * keeps a string that passes Kubernetes' "already canonical" check as written ("12.345" stays so),
 * rounds values finer than 1n away from zero, and caps binary SI at 2^63-1. Throws when `q` is not
 * a quantity.
 */
export function canonicalQuantity(q: string): string {
  const p = parse(q);
  if (q === '0' || keptAsWritten(p)) return q;
  const v = storedValue(p);
  if (v.num === 0n) return '0';
  if (p.format !== 'BinarySI') return decimalString(v, p.format);
  if (v.den !== 1n || abs(v.num) < 1024n) return decimalString(v, 'DecimalSI');
  let mantissa = v.num;
  let power = 0;
  while (power < BINARY_SUFFIX.length - 1 && mantissa % 1024n === 0n) {
    mantissa /= 1024n;
    power += 1;
  }
  return `${mantissa}${BINARY_SUFFIX[power]}`;
}
