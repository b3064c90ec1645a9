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
        max_request_bytes=max_request_bytes, web=not no_web, data=data,
    )
    shown = f"[{host}]" if ":" in host else host
    console.print(f"mentalens serving on http://{shown}:{port} (backend: {backend}; persistence: "
                  f"{config.persistence}; loading models first…)")
    run(config, log_level=log_level)
