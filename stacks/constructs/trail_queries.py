"""The field runbook's queries, saved in the trail's Athena workgroup ("the queries are pre-saved"): one
``AWS::Athena::NamedQuery`` per entry of `responder.trail_query.named_queries` - the very texts the identity task
runs (``?`` placeholders: the console asks for the values), and the runbook's two detection queries."""
from __future__ import annotations

from aws_cdk import aws_athena as athena
from constructs import Construct


class TrailQueries(Construct):
    def __init__(self, scope: Construct, id: str, *, database: str, table: str, workgroup: str,
                 date_partition: str = "") -> None:
        super().__init__(scope, id)
        from responder.trail_query import named_queries

        self.queries = {}
        for query in named_queries(database=database, table=table, date_partition=date_partition):
            key = "".join(part.title() for part in query["name"].split("-"))
            self.queries[query["name"]] = athena.CfnNamedQuery(
                self, key, name=query["name"], description=query["description"][:1024], database=database,
                work_group=workgroup, query_string=query["query"])
