"""ASGI apps that the end-to-end tests run under real servers (uvicorn, ``zerohttp --app``)."""
