mod ingest_to_api;
