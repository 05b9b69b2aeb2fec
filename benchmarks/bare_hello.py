"""hello's routes without the kit: the baseline the kit's overhead is measured against."""

from starlette.applications import Starlette

from hello.app import routes

app = Starlette(routes=routes)
