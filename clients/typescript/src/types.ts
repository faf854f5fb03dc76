// The API's answers, named as the OpenAPI document names them (src/schema.ts is generated
// from it at build time).
import type { components } from "./schema.js";

type Schemas = components["schemas"];
export type Summary = Schemas["Summary"];
export type MetricValue = Schemas["MetricValue"];
export type TimeSeries = Schemas["TimeSeries"];
export type CompactTimeSeries = Schemas["CompactTimeSeries"];
export type Breakdown = Schemas["Breakdown"];
export type Engagers = Schemas["Engagers"];
export type NoteDrilldown = Schemas["NoteDrilldown"];
export type TopNotes = Schemas["TopNotes"];
export type Catalog = Schemas["Catalog"];
export type Status = Schemas["Status"];
export type Health = Schemas["Health"];
export type Job = Schemas["Job"];
export type JobAccepted = Schemas["JobAccepted"];
export type JobRequest = Schemas["JobRequest"];
export type JobResultPage = Schemas["JobResultPage"];
/** What any query route answers, and what a query job's result is. */
export type QueryAnswer = Summary | TimeSeries | CompactTimeSeries | Breakdown | NoteDrilldown;
