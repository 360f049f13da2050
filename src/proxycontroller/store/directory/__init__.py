"""Gloo's directory config source as a store: `<root>/<plural>/<namespace>/<name>.yaml`, in Gloo's flat form.

This is the tree Gloo reads with `directoryConfigSource` (solo-kit's file resource client, rooted at
`<directory>/<plural>`), so the controller and Gloo share files with no API server between them. The parts, each
with the reasoning that shapes it:

- `codec`: bytes to a resource and back (YAML, or JSON for large objects), and the version counter in the file;
- `reader`: reading a file within `limits.maxFileBytes`, and the version a file that does not decode gets;
- `scanner`: the stat-cached view of the tree a watch keeps, forgiving of files others write;
- `writer`: atomic writes, and a memory of them so the watch does not re-read our own files;
- `watcher`: the inotify loop (watchfiles) that feeds the scanner;
- `client`: `DirectoryClient`, the ResourceClient on top.
"""

from proxycontroller.store.directory.client import DirectoryClient
from proxycontroller.store.directory.codec import next_resource_version

__all__ = ["DirectoryClient", "next_resource_version"]
