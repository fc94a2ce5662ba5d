/** The trivial task for piscina and tinypool. */
export default (n: number): number => n + 1
