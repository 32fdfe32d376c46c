/**
 * Short, bounded renderings of arbitrary values for error messages, so that a message can always say what it
 * got without dumping a megabyte array into a log line.
 */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return typeof value;
}

/** Throws a RangeError naming `name` unless value is an integer in [min, max]. Returns the value, typed. */
export function requireInt(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new RangeError(`${name} must be an integer ${range}, got ${describe(value)}`);
  }
  return value;
}

/** Throws a RangeError naming `name` unless value is a finite number in [min, max]. */
export function requireNumber(value: unknown, name: string, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    const bounds = [Number.isFinite(min) ? ` >= ${min}` : '', Number.isFinite(max) ? ` <= ${max}` : '']
      .filter((b) => b !== '')
      .join(' and');
    throw new RangeError(`${name} must be a finite number${bounds}, got ${describe(value)}`);
  }
  return value;
}

/** Throws a RangeError naming `name` unless value is a finite number > 0. */
export function requirePositive(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a finite number > 0, got ${describe(value)}`);
  }
  return value;
}

/** Throws a TypeError naming `name` unless value is undefined or a plain object; returns it as a record. */
export function optionsObject<T extends object>(value: T | undefined, name: string): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${name} must be an object, got ${describe(value)}`);
  }
  return value;
}
