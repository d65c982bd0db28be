#!/bin/sh
# Deploys the built artifact to the active region.
set -eu
echo "deploying to ${DEPLOY_REGION:-eu-west-1}"
