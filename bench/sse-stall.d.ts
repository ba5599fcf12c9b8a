// Types of bench/sse-stall.js for test/sse-stall.test.ts.
export interface SseStallResult {
  clients: number
  eventsProduced: number
  baselineRssMb: number
  peakRssMb: number
  vmHwmMb: number
  connectedAtEnd: number
  dropLines: number
  refused: { status: number, retryAfter: string | string[] | null, code: string | null }
  reconnectStatus: number
  liveness: { n: number, failed: number, p50Ms: number, p99Ms: number, maxMs: number }
  budgetP99Ms: number
}
export function sseStall (opts?: { clients?: number, produceMs?: number }): Promise<SseStallResult>
