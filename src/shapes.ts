// Building blocks of the API shapes. Each shape is declared once, as TypeBox, in the module that
// owns it; its TypeScript type is derived with Static<>, and openapi.yaml is generated from it.
import { Type, type SchemaOptions, type TLiteral, type TNull, type TSchema, type TUnion } from '@sinclair/typebox'

export const Timestamp = Type.String({ format: 'date-time' })

export const Nullable = <T extends TSchema>(t: T, options?: SchemaOptions): TUnion<[T, TNull]> => Type.Union([t, Type.Null()], options)

/** A union of the literals of an `as const` tuple, typed as those literals (not as string). */
export function oneOf<const T extends readonly string[]> (values: T, description?: string): TUnion<TLiteral<T[number]>[]> {
  return Type.Union(values.map((v) => Type.Literal(v)), { description }) as TUnion<TLiteral<T[number]>[]>
}

/** The in-memory form of an API shape: the timestamps named by K are milliseconds since the epoch. */
export type InMs<T, K extends keyof T> = Omit<T, K> & { [P in K]: null extends T[P] ? number | null : number }
