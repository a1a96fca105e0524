"""`reelgate keys webhooks ...`: a key's webhook endpoints and their deliveries, from the command line.

Like the other `keys` commands, each works on the database by default, or on `--server` with the admin token.
"""

from __future__ import annotations

from typing import Annotated

import typer

from reelgate.admin.cli import AdminToken, DatabaseUrl, DataDir, KeyId, Server, Target, parse, run
from reelgate.admin.schemas import WebhookCreate, WebhookDeliveryObject, WebhookEndpointObject

webhooks_app = typer.Typer(
    help="Where a key's video.completed / video.failed events are sent, and how their delivery went.",
    no_args_is_help=True,
)


def endpoint_line(endpoint: WebhookEndpointObject) -> str:
    return f"{endpoint.id}  {endpoint.key_id}  {endpoint.disabled_reason or 'active'}  {endpoint.url}"


def delivery_line(delivery: WebhookDeliveryObject) -> str:
    status = delivery.last_status if delivery.last_status is not None else "-"
    return (
        f"{delivery.id}  {delivery.type:15}  {delivery.state:9}  attempts {delivery.attempts}  last {status}"
        f"  next {delivery.next_attempt_at or '-'}  {delivery.task_id}  {delivery.last_error or ''}".rstrip()
    )


@webhooks_app.command("add")
def webhooks_add(
    key_id: KeyId,
    url: Annotated[str, typer.Argument(help="Where to POST the events (http or https, a public address).")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    server: Server = None,
    admin_token: AdminToken = None,
) -> None:
    """Add an endpoint and print its id, then its signing secret (shown only this once) on stdout."""
    body = parse(WebhookCreate, {"url": url})
    endpoint = run(Target(data_dir, database_url, server, admin_token), lambda a: a.add_webhook(key_id, body.url))
    typer.echo(endpoint.id)
    typer.echo(endpoint.secret)


@webhooks_app.command("list")
def webhooks_list(
    key_id: KeyId,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    server: Server = None,
    admin_token: AdminToken = None,
) -> None:
    """The key's active endpoints: id, key, state, URL."""
    found = run(Target(data_dir, database_url, server, admin_token), lambda a: a.list_webhooks(key_id))
    for endpoint in found.data:
        typer.echo(endpoint_line(endpoint))


@webhooks_app.command("remove")
def webhooks_remove(
    webhook_id: Annotated[str, typer.Argument(help="The endpoint's id, we_...")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    server: Server = None,
    admin_token: AdminToken = None,
) -> None:
    """Stop sending to an endpoint; its pending deliveries fail."""
    endpoint = run(Target(data_dir, database_url, server, admin_token), lambda a: a.delete_webhook(webhook_id))
    typer.echo(endpoint_line(endpoint))


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint's (we_...).")] = None,
    task: Annotated[str | None, typer.Option(help="Only this task's (task_...).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="At most this many.")] = 100,
    after: Annotated[str | None, typer.Option(help="Older than this delivery (wh_...): the next page.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    server: Server = None,
    admin_token: AdminToken = None,
) -> None:
    """Deliveries, newest first: id (the webhook-id), event, state, attempts, last status, next try, task.

    When more are older than the page, the last line says how to ask for them.
    """
    target = Target(data_dir, database_url, server, admin_token)
    page = run(target, lambda a: a.webhook_deliveries(endpoint, task, limit, after))
    for delivery in page.data:
        typer.echo(delivery_line(delivery))
    if page.has_more:  # on stderr, as `print_page` does, so that stdout stays one delivery a line
        typer.echo(f"more: --after {page.last_id}", err=True)


@webhooks_app.command("resend")
def webhooks_resend(
    delivery_id: Annotated[str, typer.Argument(help="The delivery's id, wh_...")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    server: Server = None,
    admin_token: AdminToken = None,
) -> None:
    """Send a delivery again (same body, same webhook-id) at the server's next sweep."""
    delivery = run(Target(data_dir, database_url, server, admin_token), lambda a: a.resend_delivery(delivery_id))
    typer.echo(delivery_line(delivery))
