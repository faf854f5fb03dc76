mod async_jobs_over_sqs;
mod ingest_to_api;
