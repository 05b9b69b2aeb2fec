"""Source hosting: the eco-system's own git repositories, one bare repository per service.

A push is all it takes to build: each repository's post-receive hook queues a build of
every branch it received, through the build service's HTTP API.
"""

from ._repos import Repository, create_repository, list_repositories, render_post_receive

__all__ = ["Repository", "create_repository", "list_repositories", "render_post_receive"]
