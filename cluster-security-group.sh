#!/usr/bin/env bash
# Create the AWS security group that cluster.yaml's nodes join, and print its id (sg-...):
# SSH from one address range, all traffic between the group's members, nothing else.
#
#   bash cluster-security-group.sh SSH_RANGE [REGION] [VPC_ID]
#   bash cluster-security-group.sh 203.0.113.7/32                 # us-west-2, default VPC
#
# SSH_RANGE is an IPv4 CIDR of /8 or narrower (0.0.0.0/0 is refused). REGION defaults to
# cluster.yaml's us-west-2; VPC_ID to the region's default VPC. Needs the AWS CLI.
set -euo pipefail

range=${1:-}
region=${2:-us-west-2}
vpc=${3:-}

octet='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
if [[ ! $range =~ ^$octet\.$octet\.$octet\.$octet/([0-9]|[12][0-9]|3[0-2])$ ]]; then
    echo "error: SSH range '$range' is not an IPv4 CIDR; give your address range, e.g. 203.0.113.7/32" >&2
    exit 2
fi
if (( ${range#*/} < 8 )); then
    echo "error: SSH range '$range' opens SSH to too much of the internet; give /8 or narrower, e.g. 203.0.113.7/32" >&2
    exit 2
fi

if [[ -z $vpc ]]; then
    vpc=$(aws ec2 describe-vpcs --region "$region" --filters Name=isDefault,Values=true \
        --query 'Vpcs[0].VpcId' --output text)
fi
group=$(aws ec2 create-security-group --region "$region" --vpc-id "$vpc" --group-name bilstm-search \
    --description "bilstm-search Ray cluster: SSH from $range, all traffic between members" \
    --query GroupId --output text)
aws ec2 authorize-security-group-ingress --region "$region" --group-id "$group" \
    --protocol tcp --port 22 --cidr "$range" >/dev/null
aws ec2 authorize-security-group-ingress --region "$region" --group-id "$group" \
    --protocol all --source-group "$group" >/dev/null
echo "$group"
