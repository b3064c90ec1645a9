"""`mentalens serve`: the API and the web app (what `make run` starts on 127.0.0.1:8000)."""

from __future__ import annotations

import typer

from mentalens.cli.app import app, console


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (non-loopback needs --api-key)."),
    port: int = typer.Option(8000, "--port", "-p"),
    backend: str = typer.Option("embedded", "--backend", "-b", help="embedded | hf | proxy | openai"),
    option: list[str] = typer.Option(None, "--option", "-o", help="Backend option key=value (repeatable), e.g. "
                                     "-o base_url=http://127.0.0.1:8080/v1 -o model=qwen"),
    persist: str = typer.Option(None, "--persist", help="off (default) | sqlite:PATH | postgresql://URL "
                                "(env MENTALENS_PERSISTENCE)"),
    api_key: list[str] = typer.Option(None, "--api-key", help="Accepted API key (repeatable; env "
                                      "MENTALENS_API_KEYS, comma-separated)."),
    cors: list[str] = typer.Option(None, "--cors-origin", help="Allow browser calls from this origin (repeatable; "
                                   "closed by default)."),
    locale: str = typer.Option(None, "--locale", help="Default locale for crisis resources (e.g. US, en-GB)."),
    data: str = typer.Option(None, "--data", help="Folder (or CSV) with CounselChat (default: the data folder)."),
    max_request_bytes: int = typer.Option(512 * 1024, "--max-request-bytes"),
    max_concurrency: int = typer.Option(4, "--max-concurrency", help="Replies generated at once; more wait "
                                        "(up to --queue-timeout s), then get 503."),
    queue_timeout: float = typer.Option(30.0, "--queue-timeout", help="Seconds a request waits for a slot."),
    first_token_timeout: float = typer.Option(60.0, "--first-token-timeout", help="Seconds without a first "
                                              "token before the backend is abandoned for the fallback reply."),
    stall_timeout: float = typer.Option(30.0, "--stall-timeout", help="Seconds between two tokens before the "
                                        "backend is abandoned for the fallback reply."),
    log_level: str = typer.Option("info", "--log-level"),
    no_web: bool = typer.Option(False, "--no-web", help="API only, no web app."),
) -> None:
    """Serve the OpenAI-compatible counselling chat, the analysis API and the web app."""
    from mentalens.cli.counsel import parse_options
    from mentalens.server import ServerConfig
    from mentalens.server import serve as run

    config = ServerConfig.from_env(
        host=host, port=port, backend=backend, backend_options=parse_options(option), persistence=persist,
        api_keys=list(api_key) if api_key else None, cors_origins=list(cors) if cors else None, locale=locale,
        max_request_bytes=max_request_bytes, web=not no_web, data=data, max_concurrency=max_concurrency,
        queue_timeout_s=queue_timeout, first_token_timeout_s=first_token_timeout, stall_timeout_s=stall_timeout,
    )
    shown = f"[{host}]" if ":" in host else host
    console.print(f"mentalens serving on http://{shown}:{port} (backend: {backend}; persistence: "
                  f"{config.persistence}; loading models first…)")
    run(config, log_level=log_level)
