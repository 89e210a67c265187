# The flagship with a learnable absolute 4D position embedding added to the match tokens
# instead of the 4D rotary embedding (`position='none'` drops positions altogether).
_base_ = ['./transformatcher_spair.py']

model = dict(refiner=dict(position='absolute'))
