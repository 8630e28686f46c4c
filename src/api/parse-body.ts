import type { z } from 'zod';
import { FlatnetError } from '../errors.js';

/**
 * Turns the raw bytes Docker sent into a validated value. Docker sends no Content-Type, so the body is
 * read as bytes for any type and parsed here; every refusal names what is wrong in one sentence.
 */
export function parseBody<S extends z.ZodType>(method: string, raw: Buffer, schema: S): z.output<S> {
  const text = raw.toString('utf8').trim();
  if (text === '') {
    throw new FlatnetError('invalid', `${method}: the request body is empty; a JSON object is expected`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new FlatnetError('invalid', `${method}: the request body is not valid JSON`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new FlatnetError('invalid', `${method}: the request body must be a JSON object`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : 'body';
    throw new FlatnetError('invalid', `${method}: field ${where} is wrong: ${issue?.message ?? 'invalid value'}`);
  }
  return parsed.data;
}
