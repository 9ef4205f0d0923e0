"""The studio, `synth studio`: the web face (routes, page logic, static ES modules) over synth.api and the wings below it; nothing imports it but synth.cli.

The library behind a local web app (SPEC section 8). app.py holds the routes, thin as the CLI's commands; paths.py is the one gate every path a
browser sends goes through; library.py, duet.py, takes.py and training.py hold each page's
logic; server.py picks the port and runs uvicorn; static/ is the page itself (HTML, CSS and
plain ES modules, no build step).
"""
