#!/bin/bash
# nasdb workers as a SLURM job array: one array task per node, one `nasdb worker` per GPU.
# Every task reaches one PostgreSQL (the coordinator) over TLS; a node that dies leaves its job's
# lease to lapse and another worker retrains the job once. See README, "Workers on many machines".
#
#   sbatch docs/cluster/slurm-array.sh
#SBATCH --job-name=nasdb-workers
#SBATCH --array=0-7                 # eight nodes
#SBATCH --nodes=1
#SBATCH --gres=gpu:4
#SBATCH --cpus-per-task=16
#SBATCH --time=12:00:00
#SBATCH --signal=B:TERM@300         # SIGTERM five minutes before the limit: finish the current job
set -euo pipefail

# The application role's URL (keep the password in ~/.pgpass, mode 0600, not in this file).
export NASDB_DATABASE_URL="postgresql://nasdb_app@db.example.org:5432/nasdb?sslmode=verify-full&sslrootcert=$HOME/.postgresql/nasdb-ca.crt"

# SLURM sets CUDA_VISIBLE_DEVICES to this task's GPUs; --gpus all takes each of them.
# exec: the supervisor receives SLURM's SIGTERM and passes it to every worker.
exec nasdb worker --gpus all --slots 4 --exit-when-idle
