"""A generic gRPC client written by others (grpc-requests) lists an Interlock
service's methods through reflection and calls one, over mutual TLS with the
sandbox's certificates.

Usage: reflection.py HOST:PORT TLS_DIR CLIENT_NAME SERVICE METHOD"""

import json
import sys

from grpc_requests import Client


def main() -> None:
    endpoint, tls_dir, name, service, method = sys.argv[1:6]
    read = lambda path: open(f"{tls_dir}/{path}", "rb").read()
    credentials = {
        "root_certificates": read("ca.pem"),
        "private_key": read(f"{name}.key"),
        "certificate_chain": read(f"{name}.pem"),
    }
    client = Client.get_by_endpoint(endpoint, ssl=True, credentials=credentials)
    answer = client.request(service, method, {})
    print(json.dumps({"services": sorted(client.service_names), "answer": answer}))


if __name__ == "__main__":
    main()
