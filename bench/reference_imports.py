"""The cold-start yardstick (issue 3): what a typical Powertools function imports, nothing created."""

import boto3  # noqa: F401
import pydantic  # noqa: F401
import requests  # noqa: F401
from aws_lambda_powertools import Logger, Metrics, Tracer  # noqa: F401
from aws_lambda_powertools.utilities import parameters  # noqa: F401
from aws_lambda_powertools.utilities.batch import BatchProcessor, process_partial_response  # noqa: F401
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent  # noqa: F401
from aws_lambda_powertools.utilities.parser import envelopes, parse  # noqa: F401
