// Building blocks of the API shapes. Each shape is declared once, as TypeBox, in the module that
// owns it; its TypeScript type is derived with Static<>, and openapi.yaml is generated from it.
import { Type, type SchemaOptions, type TLiteral, type TNull, type TSchema, type TUnion } from '@sinclair/typebox'
import { errors } from './errors.js'

export const Timestamp = Type.String({ format: 'date-time' })

/**
 * Milliseconds since the epoch of a date-time that passed the schema (RFC 3339). A leap second
 * (`23:59:60Z`, valid RFC 3339 that Date.parse refuses) counts as the second before it: the
 * daemon's clock and its store, like POSIX time, have no leap seconds.
 */
export function timeOf (dateTime: string): number {
  const ms = Date.parse(dateTime.replace(/([Tt ]\d\d:\d\d):60/, '$1:59'))
  if (!Number.isFinite(ms)) throw new errors.Validation(`'${dateTime}' is not a time plugvisor can read`)
  return ms
}

export const Nullable = <T extends TSchema>(t: T, options?: SchemaOptions): TUnion<[T, TNull]> => Type.Union([t, Type.Null()], options)

/** A union of the literals of an `as const` tuple, typed as those literals (not as string). */
export function oneOf<const T extends readonly string[]> (values: T, description?: string): TUnion<TLiteral<T[number]>[]> {
  return Type.Union(values.map((v) => Type.Literal(v)), { description }) as TUnion<TLiteral<T[number]>[]>
}

/** The in-memory form of an API shape: the timestamps named by K are milliseconds since the epoch. */
export type InMs<T, K extends keyof T> = Omit<T, K> & { [P in K]: null extends T[P] ? number | null : number }
