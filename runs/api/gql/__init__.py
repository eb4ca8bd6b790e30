"""`POST /v0/gql`: the slice of the Inngest dev server's GraphQL API (`pkg/coreapi/*.graphql` in
its repository) that the SDKs' own test suites use to observe runs and events.

- `run(runID) { status output trace(preview) { ...RunTraceSpan } }`: a run and its trace, the run
  as the root span and its steps as children (runs/api/gql/trace.py);
- `runTraceSpanOutputByID(outputID) { data error { message name stack } }`: a span's output;
- `runTrigger(runID) { payloads }`, `event(query: {eventId})`, `eventV2(id)`: what started runs.

As in Inngest, outputs and payloads travel as JSON strings, a step's output is its data without
the `{"data": …}` memo wrapper, and the root span's output is the run's result or error.
"""
from runs.api.gql.schema import graphql_view, schema

__all__ = ["graphql_view", "schema"]
