"""Access to AWS shared by the collectors and the circuit breaker: accounts and roles from the
registry, boto3 clients with retries and call counting, and error wording."""
