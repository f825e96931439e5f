# Interleaved: the planner as it was (e89ee30) and with the re-plan after the warm-up (HEAD), quick profile, 60 s
cd /work/main
for i in 1 2; do
  for arm in old new; do
    echo "{\"R60_${arm}_${i}\": {\"budget_s\": 60, \"note\": \"replan A/B: ${arm} planner, round ${i}\"}}" > /work/scratch/speed/ab_$arm.json
    if [ $arm = old ]; then PP=/work/wt_old; else PP=/work/main; fi
    PYTHONPATH=$PP .venv/bin/python /work/scratch/speed/exp2.py /work/scratch/speed/ab_$arm.json /work/scratch/speed/replan_ab.jsonl 2>&1 | grep -v Warn | tail -3
  done
done
