"""Risk rules: levels, modifiers (negation, quotes, hypotheticals, jokes, third persons), conversations, inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from mentalens.errors import DataError, UnknownNameError
from mentalens.safety import RiskLevel, assess


def level(x, **kw) -> str:
    return assess(x, use_classifier=False, **kw).level.value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # imminent: an attempt under way, or intent/plan set for now, or means at hand with intent
        ("I just swallowed a whole bottle of paracetamol", "imminent"),
        ("i'm on the ledge of the car park roof and i'm about to jump", "imminent"),
        ("I've got the gun in my hand and I'm going to end it right now", "imminent"),
        ("I'm going to kill myself tonight", "imminent"),
        ("Voy a suicidarme esta noche", "imminent"),
        # high: intent, plan, method, preparation, recent attempt, self-harm
        ("I'm going to kill myself next week", "high"),
        ("I've written my suicide note", "high"),
        ("I tried to kill myself three days ago", "high"),
        ("I cut myself again last night", "high"),
        ("I have a plan to overdose on my meds", "high"),
        ("Tengo un plan para quitarme la vida", "high"),
        # moderate: active ideation without plan or intent
        ("I keep thinking about killing myself", "moderate"),
        ("honestly i want to kms", "moderate"),
        ("I keep thinking about doing myself in", "moderate"),  # UK/IE slang (round 15)
        ("been thinking of topping myself", "moderate"),
        ("The idea of ending my life keeps coming back", "moderate"),
        ("I've been having suicidal thoughts", "moderate"),
        ("Pienso en suicidarme", "moderate"),
        # low: passive wish, hopelessness, burden
        ("I wish I could go to sleep and not wake up", "low"),
        ("My family would be better off without me", "low"),
        ("Ya no quiero vivir", "low"),
        # none: everyday language and figures of speech
        ("This meeting is killing me", "none"),
        ("I'd kill for a coffee", "none"),
        ("I'm dying to see that film", "none"),
        ("Me muero de sueño", "none"),
        ("I need to cut my fringe", "none"),
        ("I need to top myself up with coffee", "none"),
        ("My mum would do me in if she saw my room", "none"),
        ("The idea of suicide prevention week is great", "none"),
    ],
)
def test_levels(text: str, expected: str) -> None:
    assert level(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # round 18: hedged counts, some of a poison, insulin on purpose, cutting deeper, still self-harming ...
        ("took like 30 of my pils already cant feel my hands", "imminent"),
        ("I drank some of the weedkiller from the shed.", "imminent"),
        ("Took double my insulin on purpose an hour ago and skipped dinner.", "imminent"),
        ("Cut a lot deeper than I meant to this time and it won't stop.", "imminent"),
        ("still cutting most nights, it's the only thing that takes the edge off.", "high"),
        # ... thoughts of a method, the bus slang, Spanish ideation and urges
        ("I think about stepping in front of a bus on my commute most mornings. I'm not going to.", "moderate"),
        ("Every time I drive over the bridge I think about just turning the wheel.", "moderate"),
        ("Se me pasa por la cabeza matarme casi todos los días.", "moderate"),
        ("Tengo unas ganas horribles de hacerme daño otra vez.", "moderate"),
        # look-alikes: a dose is no overdose, cutting carbs, jumping into water, a fence climbed for a photo
        ("I took 2 paracetamol for my headache", "none"),
        ("took 2 ibuprofen, feeling better", "none"),
        ("Still cutting carbs and it's working", "none"),
        ("I still think about jumping off the bridge into the river like we did as kids", "none"),
        ("Salté la baranda del puente para sacar una foto", "none"),
        ("We're still burning the candle at both ends", "none"),
        # round 17: chat drops the "I" at the start of a sentence ...
        ("Took everything in the medicine cabinet with half a bottle of vodka. Feeling really floaty.", "imminent"),
        ("ok so I did it. swallowed all the lithium. lying in bed waiting.", "imminent"),
        ("Finished the bottle of antifreeze. Wanted it to be quiet.", "imminent"),
        ("cut myself again last night, deeper this time", "high"),
        # ... amounts said another way, insulin, poison in Spanish, a blade held to the body
        ("I've taken my dad's heart pills, maybe 30 of them. My chest feels weird.", "imminent"),
        ("Took my whole month of antidepressants with wine.", "imminent"),
        ("I've emptied all my insulin pens into myself.", "imminent"),
        ("Me tomé el veneno para ratas hace un rato.", "imminent"),
        ("The razor is on my wrist.", "high"),
        # ... and short misspellings that are no word of their own
        ("im on the brige rn gonna jump", "imminent"),
        # look-alikes of the same shapes
        ("My brother took all his pills last year.", "none"),
        ("Took my vitamins this morning.", "none"),
        ("Took all my meds at 8 like always, alarm on my phone helps.", "none"),
        # a routine counts in its own sentence only, not anywhere in a long post
        ("Awful day. My sister rang for money, as usual. I've taken every tablet in the cupboard and I'm waiting now.",
         "imminent"),
        ("Took everything in the cupboard out to clean it.", "none"),
        ("Cut myself a slice of cake.", "none"),
        ("Finished the bottle of wine with my sister, what a night", "none"),
        ("He held a knife to my throat and took my phone", "none"),
        ("Compré lejía para limpiar el moho del baño", "none"),
        ("The Weeknd is playing the bridge stage tonight", "none"),
        # round 19: an act under way said plainly (a ligature, the sea, a level crossing, a ledge, a count taken) ...
        ("Tied the cord to the loft hatch and around my neck.", "imminent"),
        ("Got the rope on and I'm standing on the chair.", "imminent"),
        ("Tengo la soga puesta.", "imminent"),
        ("Walking into the lake now, it's up to my chest.", "imminent"),
        ("Parked on the level crossing, waiting for the barriers.", "imminent"),
        ("I'm sitting on the ledge right now.", "imminent"),
        ("Already took them. All 50.", "imminent"),
        ("Ate some of the rat poison from the garage.", "imminent"),
        ("The rope's tied to the banister. Just building up the nerve.", "imminent"),
        # ... means made ready, places checked, stockpiles, goodbyes left for after
        ("My shotgun's loaded and in my hands.", "high"),
        ("I've loaded it and it's on my lap now.", "high"),
        ("The rifle was in the barn. Last night I put it in my mouth.", "high"),
        ("I've checked that the beam will hold my weight.", "high"),
        ("Charcoal and duct tape are in the boot of the car.", "high"),
        ("Bought a hose that fits my car exhaust.", "high"),
        ("The letters are in the drawer, my sister will find them after.", "high"),
        ("Been saving my nan's sleeping tablets for weeks.", "high"),
        ("I'm going to climb over the railing.", "high"),
        ("I still cut every night, my arms mostly.", "high"),
        ("I bang my head on the wall until I see stars.", "high"),
        # ... and active thoughts of a method
        ("The only way out of this mess is to take myself out of the picture.", "moderate"),
        ("My mind keeps drifting back to overdosing.", "moderate"),
        ("I look at the razors and think about using one on myself.", "moderate"),
        ("They'd be better off with the insurance money if I topped myself.", "moderate"),
        # look-alikes of the same shapes
        ("Walking into the sea now for my charity swim!", "none"),
        ("I'm going to go over the edge of my budget this month", "none"),
        ("Checked the branch will hold the tyre swing", "none"),
        ("I want to die my hair blue", "none"),
        ("Ready to die on the dance floor tonight", "none"),
        ("Saving my old pills to take back to the pharmacy", "none"),
        ("Picked up charcoal and tape for art class", "none"),
        ("I found a spot in the woods for our picnic", "none"),
        ("Parked at the cliff top to watch the sunset", "none"),
        ("The kids will find them after the egg hunt", "none"),
        ("Just working up the nerve to ask her out", "none"),
        ("I cut every day at the salon, love my job", "none"),
        ("Set up emails to send automatically to clients while I'm on leave", "none"),
        # an accident counts in its own sentence, not anywhere in the message
        ("Had friends over, I was cooking all day. Then I cut myself again last night, deeper than before.", "high"),
        ("I was chopping onions and cut myself, it's bleeding a bit.", "none"),
        # round 20: a cue matched from a sentence start belongs to that sentence (". Cut myself" is not the first one)
        ("New knives from my brother. Cut myself twice already chopping onions, so sharp.", "none"),
        # ... overdoses with drink, a whole box, a garage, a platform, a purpose clause, working up to it
        ("Necked the whole pack of xannies with half a bottle of vodka.", "imminent"),
        ("Had a bottle of wine on top of all my sertraline.", "imminent"),
        ("I took the whole box about an hour ago.", "imminent"),
        ("Sitting in the car in the garage with the engine running.", "imminent"),
        ("Standing at the end of the platform where the express doesn't stop.", "imminent"),
        ("Heading up to the cliffs now to end it.", "imminent"),
        ("I'm up on the roof, working up to going over the edge.", "imminent"),
        ("My rifle's on my lap and it's loaded.", "high"),
        ("The rope is up in the loft.", "high"),
        ("The belt's tied to the rail and I've checked it holds.", "high"),
        ("I left the door unlocked so nobody has to break it down.", "high"),
        ("The note's under my pillow for when they find me.", "high"),
        ("Checked the suicide clause on the policy, it ran out in May.", "high"),
        ("Gave my PS5 to my cousin. Told him I'm bored of it. I'm not.", "high"),
        ("Got out of hospital after last week's attempt.", "high"),
        ("tried to unalive last month, didn't work", "high"),
        ("I go to the bathroom and cut afterwards.", "high"),
        ("Anoche me volví a cortar.", "high"),
        ("Salí de urgencias ayer después de intentarlo.", "high"),
        ("Ya tengo pensado cómo y cuándo.", "high"),
        ("He estado juntando mis pastillas.", "high"),  # Spanish "he" (haber) is not the English "he"
        ("Me corté y no para de sangrar.", "imminent"),
        # ... and active thoughts of a method
        ("Killing myself has crossed my mind a lot lately.", "moderate"),
        ("'Just kill yourself' pops into my head every time I mess up.", "moderate"),
        ("My brain keeps going 'just step forward' on the platform.", "moderate"),
        ("I keep thinking about taking myself out of the equation.", "moderate"),
        ("Se me metió en la cabeza matarme.", "moderate"),
        # look-alikes of the same shapes
        ("I sat in the garage with the engine running to warm it up, door wide open.", "none"),
        ("Wrote a goodbye letter to my therapist today, we finished our sessions.", "none"),
        ("This is my last post here, moving to a different forum.", "none"),
        ("They say giving away belongings can be a warning sign.", "none"),
        ("Told the guy at the shop it was for my sister's birthday.", "none"),
        ("I'm going to the cliffs to watch the sunset.", "none"),
        ("Paid off all my debts this year, feels amazing!", "none"),
        ("Had a glass of wine with dinner and took my antibiotics.", "none"),
        # round 21: what dev25 and dev26 missed: means at hand said plainly, beside a goodbye or a time
        ("I've got the pistol in my lap right now.", "high"),
        ("The gun's out on the table. I'm doing it tonight.", "imminent"),
        ("I have the gun in my lap. Safety's off. Tell my sister I'm sorry.", "imminent"),
        ("The rope's in the garage. Tonight's the night.", "imminent"),
        ("Bath's running and the blade is on the edge of the tub. Logging off for good.", "imminent"),
        ("I'm at the reservoir and my coat pockets are full of stones.", "high"),
        ("On the platform, the express comes through at 2:14. Not stepping back this time.", "imminent"),
        ("Driving to the bridge after my shift. I wanted one person to know it wasn't an accident.", "imminent"),
        # "charcoal's going" (burning) is an attempt under way since round 24 (it was read high before)
        ("Charcoal's going in the bathroom and I've taped the gap under the door.", "imminent"),
        ("hav the rope set up in the shed jus waitin for mum to go to bed", "imminent"),
        ("necked the lot of me mam's tablets, sat in the park now", "imminent"),
        ("Was in A&E three days ago after I tried.", "high"),
        # ... plans, stockpiles, notes and affairs
        ("Looked up which bridges near me don't have the netting. There are two.", "high"),
        ("I've picked the date. It's after my sister's wedding so I don't wreck her day.", "high"),
        ("got the whole unalive plan sorted ngl", "high"),
        ("I know exactly which bend I'd use and what speed I'd need.", "high"),
        ("I'm not taking them, I'm collecting them.", "high"),
        ("My note's in my drafts. I edit it most nights.", "high"),
        ("Gave my guitar to my cousin. Told him I'm decluttering. He doesn't need to know the real reason.", "high"),
        ("Wrote letters to my parents. They're in my desk drawer. I haven't decided when yet.", "high"),
        ("I've started saying goodbye to people without them knowing it's goodbye.", "high"),
        ("Held the hair straighteners against my stomach on purpose.", "high"),
        ("I keep a blade in my phone case. Use it most days.", "high"),
        ("The scars had finally faded and last night I made new ones.", "high"),
        # ... and active thoughts
        ("My brain keeps offering suicide as the answer to everything.", "moderate"),
        ("Around 3am my brain starts building the case for ending it.", "moderate"),
        ("The suicidal thoughts are back since I came off the meds.", "moderate"),
        ("Cada vez que me peleo con mi novio pienso en quitarme la vida.", "moderate"),  # "-rme": the writer
        # look-alikes of the same shapes
        ("Cleaning my rifle with it in my lap, then off to the range.", "none"),
        ("The rope's in the garage if you need it for the tent.", "none"),
        ("How many ibuprofen is too many in a day? Got a raging toothache.", "none"),
        ("Survived my first marathon! My legs want to die but my heart is full.", "none"),
        ("My nan signs off every text with 'Goodbye forever, love Nana' lol", "none"),
        ("A guy at work attempted suicide last year and he's doing really well now.", "none"),
        ("I'm on the platform, the express comes through at 8:14, see you in town.", "none"),
        ("Hace cinco años tuve pensamientos suicidas y hoy estoy bien.", "none"),
        ("Burnt myself on the straighteners, not on purpose obviously.", "none"),
        ("Cut myself chopping onions, didn't do it on purpose obviously.", "none"),
        ("47 attempts on this boss. Goodbye cruel world (of Elden Ring).", "none"),
        # round 22: what dev27 and dev28 missed: overdoses and attempts told plainly
        ("Drank half a bottle of vodka and took all my lithium.", "imminent"),
        ("just took a fat handful of my xans w the henny", "imminent"),
        ("how long for 40 paracetamol to kick in? took them about an hour ago", "imminent"),
        ("I'm sat in the car in the garage and the engine's been running a while.", "imminent"),
        ("On Tuesday I tried to strangle myself with a scarf.", "high"),
        ("they pumped my stomach on friday and I still want to die", "high"),
        ("The overdose was Thursday. I'm annoyed it didn't work.", "high"),
        ("Did a test run with the belt in the wardrobe last night.", "high"),
        ("Pulled out my stitches so it would scar worse.", "high"),
        ("I punch the brick wall until my knuckles split.", "high"),
        ("I keep a razor blade tucked in my phone case. Haven't used it since Saturday.", "high"),
        # ... plans, stockpiles, affairs and goodbyes
        ("Googled painless ways at 3am again.", "high"),
        ("Six floors should do it, right.", "high"),
        ("Started putting my tramadol aside instead of taking it.", "high"),
        ("Got a second prescription from a different GP.", "high"),
        ("My therapist asked if I had a method and I said no. I do.", "high"),
        ("Checked the exclusion clause, it's been two years so it'll pay out.", "high"),
        ("Said goodbye to mum tonight without her knowing it was goodbye.", "imminent"),
        ("It's so he's sorted when I'm gone, which won't be long.", "high"),
        ("Wrote letters to my brother and my mates. Not sure when yet, but they're done.", "high"),
        ("Truth is I won't be around to play them by summer.", "high"),
        ("Regalé mi guitarra a mis primos. Les dije que me voy de viaje. No es un viaje.", "high"),
        ("Estoy dejando todo arreglado para cuando ya no esté.", "high"),
        ("Estoy en el puente. Me voy a tirar en cuanto deje de pasar gente.", "imminent"),
        # ... and active thoughts
        ("On the platform I find myself thinking 'one step'.", "moderate"),
        ("Had a full-on 'I should just kill myself' moment in the car park.", "moderate"),
        ("The 'just end it' thoughts came back after the layoff.", "moderate"),
        ("At night the suicidal thoughts get really loud.", "moderate"),
        ("Se me cruza por la cabeza quitarme la vida casi diario.", "moderate"),
        # look-alikes of the same shapes, and times that are not set
        ("Goodbye cruel world, I'm off to Ibiza for a week with no wifi", "none"),
        ("Going to sleep forever after this run of nights.", "none"),
        ("Finished the suicide note for my character in my novel.", "none"),
        ("Hace cinco años intenté quitarme la vida. Hoy terminé la carrera, se puede salir.", "none"),
        ("Do I need to change the beneficiary on my pension now the divorce is final?", "none"),
        ("Me voy a tirar a la piscina, hace un calor horrible.", "none"),
        ("When I'm on the platform I think about stepping in front of the train.", "moderate"),
        ("I know which bridge. Not tonight.", "high"),
        # round 23 (candidate): what dev29 and dev30 missed
        ("Rope's tied. Just wanted to say thanks to this sub for trying.", "imminent"),
        # an attempt under way: imminent since round 24 reads "charcoal's lit" (round 23 stopped at high)
        ("Charcoal's lit and I've taped the windows. Please don't try to find me.", "imminent"),
        ("Bought sleeping pills from a different chemist so they wouldn't ask questions.", "high"),
        ("Second attempt this year, with the car this time.", "high"),
        ("Discharged myself yesterday after they pumped my stomach.", "high"),
        ("Kept the oxycodone from my surgery as an exit.", "high"),
        ("I'll do it in the shower so it's easier for whoever finds me.", "high"),
        ("Still doing the lighter thing on my forearm most nights.", "high"),
        ("Went to the hardware shop for rope. Told the guy it was for towing.", "high"),
        ("My therapist asked if I'd made a plan and I said no. That was a lie.", "high"),
        ("bruv i'm on the roof, tell my mum i'm sorry", "imminent"),
        ("After that there's nothing left to pay for because I won't be here.", "high"),
        ("My brain's favourite hobby lately is suggesting suicide whenever something goes wrong.", "moderate"),
        ("I daydream about killing myself the way other people daydream about holidays.", "moderate"),
        ("Estoy en la azotea. Esta noche se acaba todo.", "imminent"),
        ("El mes que viene ya no voy a estar.", "high"),
        # look-alikes
        ("Off to the hardware shop for rope and a tarp. Wild camping this weekend!", "none"),
        ("Goodbye forever, Internet Explorer. You will not be missed.", "none"),
        ("I won't be here after Friday because we're moving to Bristol.", "none"),
        ("Mi cumpleaños es hoy.", "none"),
        # round 24 (candidate): what dev31 and dev32 missed
        ("Suicidal thoughts are back since I stopped the sertraline.", "moderate"),
        ("sucidal thoughs agian since the breakup", "moderate"),
        ("At the bus stop I thought 'I could just kill myself and all this would stop'.", "moderate"),
        ("I'd be better off killing myself than facing the tribunal.", "moderate"),
        ("Every time I drive on the motorway I think about just yanking the wheel.", "moderate"),
        ("I won't pretend I haven't thought about suicide since the divorce.", "moderate"),
        ("I don't want to be here and I mean that in the suicide way.", "moderate"),
        ("Is it normal to plan your day around not thinking about killing yourself?", "moderate"),
        ("Two years since the attempt and I still think about finishing it.", "moderate"),
        ("Found the method I'd use. Not today though.", "high"),
        ("Checked which bridges still don't have the netting. There's one by the station.", "high"),
        ("Counted the floors of the car park. Eight should be enough.", "high"),
        ("Told my landlord I'm emigrating. I'm not.", "high"),
        ("My plan is the big tree on the ring road, at speed.", "high"),
        ("Asked the GP the maximum dose and I've got more than that saved now.", "high"),
        ("Updated my will and named my sister executor. If only she knew.", "high"),
        ("I still cut, on my stomach now so nobody sees.", "high"),
        ("Used the compass on my thighs again last night.", "high"),
        ("relapsed on the cat scratches, twice this week", "high"),
        ("Wey, volví a cortarme.", "high"),
        ("i rote my sucide note, its under my bed", "high"),
        ("The gun's been on my lap since midnight.", "high"),
        ("Already popped like 40 bars.", "imminent"),
        ("drank hole botle of bleech", "imminent"),
        ("The belt is over the top of the wardrobe door. Tell my mum I'm sorry about the mess.", "imminent"),
        ("The cable's tied up in the wardrobe. Doing it once it's dark.", "imminent"),
        ("I'm up on the roof of the flats. Not taking the stairs back down this time.", "imminent"),
        ("Got all of dad's old morphine out on the bed. Taking it once I've finished this drink.", "imminent"),
        # look-alikes
        ("Took a lot of pills today: vitamin D, fish oil and magnesium. Too many supplements?", "none"),
        ("Compré una cuerda para el columpio del jardín.", "none"),
        ("I could kill myself for forgetting her birthday again.", "none"),
        ("My suicidal thoughts are gone and they're not coming back.", "none"),
        ("I'm up on the roof fixing the aerial.", "none"),
        ("I still cut my own hair to save money.", "none"),
        ("My plan is the big Tesco on the ring road, then home.", "none"),
        ("I didn't want to go without saying goodbye to you all, last day at work today!", "none"),
        ("Just waiting for everyone to be asleep so I can wrap the presents.", "none"),
        ("Bought a length of rope for the tree swing. Kids are thrilled.", "none"),
        ("Told my mum I'm emigrating to Canada next year and she cried.", "none"),
        # round 25: dev33 + dev34's look-alikes
        ("I'm going to shoot myself in the foot, but I like the old logo better.", "none"),
        ("On the first aid course we learned what to do if someone's taken an overdose.", "none"),
        ("I used to self-harm. Got the scars covered last week, it feels like closing a chapter.", "none"),
        ("Learning to whittle and I sliced my thumb with the knife, ouch.", "none"),
        ("In creative writing we had to write a goodbye letter from a soldier.", "none"),
        ("Took an overdose last night, I'm still in hospital.", "high"),
        ("I'm going to shoot myself tonight.", "imminent"),
        # round 26: dev35 + dev36's misses, each beside look-alikes
        ("Took all my gabapentin and the codeine an hour ago and now I can't feel my legs.", "imminent"),
        ("I take my gabapentin every night for the nerve pain.", "none"),
        ("took like 30 of my antidepresents like 20 min ago im so dizzy", "imminent"),
        ("already necked a fat handful of my meds, feeling woozy", "imminent"),
        ("I took the whole week's worth at once about an hour ago.", "imminent"),
        ("I sorted the whole week's worth into the pill organiser.", "none"),
        ("Me he tomado dos cajas de ibuprofeno con el vino hace un rato.", "imminent"),
        ("Compré dos cajas de ibuprofeno en la farmacia.", "none"),
        ("Every time something goes wrong my brain goes straight to 'you could just kill yourself'.", "moderate"),
        ("Most mornings the first thing in my head is killing myself.", "moderate"),
        ("Most mornings the first thing in my head is coffee.", "none"),
        ("My life insurance has been running over two years now, so suicide is covered.", "high"),
        ("I think I'm past the exclusion bit on my policy now.", "high"),
        ("Is suicide covered by a standard life insurance policy? Writing a guide at work.", "none"),
        # round 27: dev37 + dev38's misses and look-alikes
        ("no cap im ending it tn, rope's sorted, fam are out till late", "imminent"),
        ("no cap that exam was brutal", "none"),
        ("took all 40 of the sertraline about half an hour ago, feeling floaty", "imminent"),
        ("I injected my whole week of insulin in one go. Hands are shaking.", "imminent"),
        ("How long does antifreeze take to work? Asking because I just did.", "imminent"),
        ("How long does a tattoo take to heal? Asking because I just did one.", "none"),
        ("Suicidal thoughts have been creeping in since I failed the bar a second time.", "moderate"),
        ("A veces pienso seriamente en acabar con todo.", "moderate"),
        ("Se me viene a la cabeza quitarme la vida.", "moderate"),
        ("I'll be dead before I pay £9 for a pint.", "none"),
        ("Throwing out all my old diaries from when I was depressed at uni. I don't need them anymore.", "none"),
        ("My new therapist went through the suicide screening questions at intake. No to all of them.", "none"),
        # round 38: dev59 + dev60's misses, each beside look-alikes of its shape
        ("took al the pils in the packet half an hour ago, feel sick", "imminent"),
        ("the rope is on the beam and its round my neck now", "imminent"),
        ("My new rope chain is round my neck all day, love it.", "none"),
        ("cut to deep on purpos, blod evrywhere", "imminent"),
        ("still cuttin evry nite on my arms", "high"),
        ("thots of suiside evry day but im not going to act on them", "moderate"),
        ("Thoughts of moving abroad every day since the holiday.", "none"),
        ("doing the 🔪 thing on my legs again", "high"),
        ("Me he abierto las venas y no para de sangrar.", "imminent"),
        ("Empecé a cortarme fuerte y no para de salir sangre.", "imminent"),
        ("I've had the whole box and half a bottle of gin. On purpose.", "imminent"),
        ("I've had the whole box of chocolates on purpose, no regrets.", "none"),
        ("How many co-codamol is too many? Asking because I've already had about 30.", "imminent"),
        ("Stuck on every patch I had at once, all of them.", "imminent"),
        ("Crushed all my oxycodone into some custard and ate it.", "imminent"),
        ("I have drunk the sniper. My chest is on fire.", "imminent"),
        ("Mixed the rat poison into my tea.", "high"),
        ("Mixed the weed killer into the watering can for the patio.", "none"),
        ("Bedsheet's torn into strips and tied to the bars.", "high"),
        ("Cut an old T-shirt into strips to tie up the tomato plants.", "none"),
        ("Been hiding my meds under my tongue for a week now.", "high"),
        ("Saved my nan's old tramadol and I'll take it all when the house is empty.", "high"),
        ("My nan's old tramadol is in the cupboard, I'll take it all to the pharmacy to be disposed of.", "none"),
        ("Planning my exit from this company. Two interviews next week.", "none"),
        ("been planning my sewerslide, just waiting for the right time", "high"),
        ("Checked which beam in the garage will hold my weight.", "high"),
        ("Checked which shelf will hold my weight before I climbed it to reach the paint.", "none"),
        ("Sorted who gets the cats. Monday is the day I finish myself off.", "high"),
        ("So none of my family have to be the one who finds me, I'm going somewhere far.", "high"),
        ("I won't be alive to look after him after next week. I've made my mind up.", "high"),
        ("I'm parked at the cliffs. I'm going to walk off the edge after this message.", "imminent"),
        ("Walked to the edge of the garden to look at the roses.", "none"),
        ("Ordered something online to end it, arrives Friday.", "high"),
        ("Ordered something online to end it with the gym, cancellation letters are a pain.", "none"),
        ("There's a voice in me going 'just kill yourself'. I won't act on it.", "moderate"),
        ("Estoy en la azotea. Ya me despedí de mi madre.", "imminent"),
        ("Ya me despedí de mi madre en el aeropuerto.", "none"),
        # round 39: dev61 + dev62's misses and look-alikes
        ("Shot everything I had left at once, on purpose. Hands shaking.", "imminent"),
        ("Shot everything I had at the range today, great session.", "none"),
        ("Emptied both insulin pens into myself.", "imminent"),
        ("cut rly deep its not stopping", "imminent"),
        ("Home since Friday after the thing with the belt.", "high"),
        ("I've had actual suicidal thoughts this week for the first time.", "moderate"),
        ("barcode arms again this week", "high"),
        ("Scanned the barcode on my arm tattoo, it links to my band's page.", "none"),
        ("got the stuff for the sewerslide", "high"),
        ("kms attempt #2 was last weekend", "high"),
        ("I know how much it'll take to not wake up.", "high"),
        ("Gave the dog to my neighbour, and I'm saving my script. Told the GP I lost the last one.", "high"),
        ("I'm saving my script as a PDF on my phone.", "none"),
        ("I'm saving my script for the audition, it needs one more pass.", "none"),
        ("I've a supply of my late husband's tablets put by. I'm choosing when.", "high"),
        ("I'm using the lot tonight, on purpose.", "imminent"),
        ("unaliving myself in like 10 min", "imminent"),
        ("cup's mixed. drinking it after i post this", "imminent"),
        ("I won't be around after that. I've got it all worked out.", "high"),
        ("Got it all worked out: the train at 8, then the ferry.", "none"),
        ("I've picked the date and written them a letter so they understand why.", "high"),
        ("Estoy en las vías. No me busquen.", "imminent"),
        ("Dejé una carta para cada uno. Ya sé dónde y cómo.", "high"),
        ("Compré varias cajas en farmacias distintas para que no me pregunten.", "high"),
        ("Me encerré en el baño con la cuchilla y hay mucha sangre.", "imminent"),
        ("Pienso en terminar con todo desde que perdí el trabajo.", "moderate"),
        ("Voy a terminar con todo el trabajo antes del viernes.", "none"),
        ("La clase de spinning de hoy me mató, no siento las piernas.", "none"),
        ("Hoy me mato, ya no aguanto más.", "imminent"),
        # round 40: dev63 + dev64's misses and look-alikes
        ("Five fentanyl patches on now instead of one.", "imminent"),
        ("Two nicotine patches on now, trying to quit properly.", "none"),
        ("Checked the beam in the barn will hold my weight.", "high"),
        ("I will jump from the terrace after the results.", "high"),
        ("I don't want it to be my son who finds me.", "high"),
        ("I'm going up alone. I'm not planning on coming down. I've picked the spot.", "high"),
        ("i thnk abt endin my life evry day, not gna act on it", "moderate"),
        ("my brain: kys. every day. not gonna", "moderate"),
        ("The words 'just kill yourself' pop into my head all day. I won't.", "moderate"),
        ("Killing myself has started to feel like a reasonable idea. No plan.", "moderate"),
        ("The thought of eating my own gun comes most nights.", "moderate"),
        ("cut 2 deep its not stoping", "imminent"),
        ("I have consumed the whole bottle of pesticide.", "imminent"),
        ("Shot everything I had left and I meant it.", "imminent"),
        ("I was in hospital after taking an overdose on the 3rd.", "high"),
        ("I think about taking an overdose when it gets bad. No plan.", "moderate"),
        ("Sitting on the ledge, legs over the side, before I let myself slide off.", "imminent"),
        ("After I pay this month rent, I no go dey this world again.", "high"),
        ("Got more than enough now to make sure I don't wake up.", "high"),
        ("Set three alarms to make sure I don't sleep through the exam.", "none"),
        ("Bought otapiapia from the market and hid it.", "high"),
        ("rote my leters 2 evry1. doin it sat", "high"),
        ("Se me pasa por la cabeza quitarme de en medio.", "moderate"),
        ("Tengo el revólver en la mano. Esta noche se termina todo.", "imminent"),
        ("El viernes me quito la vida, ya lo tengo decidido.", "high"),
        ("Busqué desde qué altura una caída no se sobrevive.", "high"),
        # round 41: dev65 + dev66's misses and look-alikes
        ("Have swallowed all the tablets in the drawer.", "imminent"),
        ("Loaded the whole bag into one syringe. Doing it on purpose this time.", "imminent"),
        ("Got enough here to stop my heart, and it's not an accident this time.", "imminent"),
        ("I broke the vase on purpose this time, sorry mum.", "none"),
        ("Counted my pills out into a jar. I'll take them when the holidays are over.", "high"),
        ("Counted my tablets into the dosette box for the week.", "none"),
        ("I deliberately took far too much last month and woke up in hospital.", "high"),
        ("Two weeks out of intensive care after the overdose and I still wish it had worked.", "high"),
        ("I tried to gas myself in the car in March.", "high"),
        ("I keep having thoughts of doing away with myself. No plan.", "moderate"),
        ("I've thought about taking myself out so many times.", "moderate"),
        ("I'm thinking about taking myself out for dinner tonight.", "none"),
        ("I'm sat on the window ledge with my legs over. Going to push off soon.", "imminent"),
        ("Sitting on the windowsill with my legs out, enjoying the sun.", "none"),
        ("Cleaned my rifle last night. Working out the when.", "high"),
        ("Signed the house over to my sister. The only thing left is to get the rope.", "high"),
        ("The only thing left is to take the dog for a walk.", "none"),
        ("Cleared all my debts. The beam is strong enough, I've checked.", "high"),
        ("Paid off all my debts this year, so proud!", "none"),
        ("The branch is strong enough for the swing, I checked.", "none"),
        ("Googled how many of my sleeping pills would kill me.", "high"),
        ("Googled how much chocolate would be lethal for a dog.", "none"),
        ("I've been holding back some of my tablets each week. I've decided.", "high"),
        ("Friday is the day I've chosen to end my life.", "high"),
        ("Sunday will be my last day alive.", "high"),
        ("Friday is my last day at work!", "none"),
        ("been stockpiling for weeks now. kms", "high"),
        ("Wrote letters to everyone before I kill myself.", "high"),
        ("They'd all cope better without me.", "low"),
        ("The team will cope better without me micromanaging.", "none"),
        ("Dignitas turned me down last month.", "moderate"),
        ("I keep thinking how easy it would be to swerve into the path of a lorry.", "moderate"),
        ("Had the thought again in the meeting: I could just end my life and none of it would matter.", "moderate"),
        ("My suicidal thoughts are worse than when I was using.", "moderate"),
        ("still doing sh most nights", "high"),
        ("sh relapse last night, sorry", "high"),
        ("I do sh scripts at work all day.", "none"),
        ("Stuck five of the patches on my chest at once.", "imminent"),
        ("Stuck five patches on my jacket.", "none"),
        ("swallowed the whole stash just now", "imminent"),
        ("Pagué mis deudas y ya hice mi testamento. Elegí el día.", "high"),
        ("Pagué las deudas de la tarjeta, ¡por fin!", "none"),
        ("La soga ya está amarrada. Me voy ya, perdón.", "imminent"),
        ("Emailed payroll to send my final pay to my son. Sunday is when I'll do it.", "high"),
        ("Which floor is high enough that you wouldn't survive? Asking for me.", "high"),
        ("Which floor is high enough that you wouldn't survive the fall in the film?", "none"),
        ("i tooken all my mums pils", "imminent"),
        ("got the cord rnd my neck, kicking the chair aftr this msg", "imminent"),
        ("Standing on a stool with the flex tied round my neck.", "imminent"),
        (
            "Buying paracetamol from different chemists. Up to sixty now. Keeping them for the week after the funeral.",
            "high",
        ),
        # round 42: dev67 + dev68's misses and look-alikes
        ("Parked up with my pistol in my lap, round chambered. This is where it ends.", "imminent"),
        ("Range day: rifle across my lap while I wait for my turn.", "none"),
        ("Rehomed the dog. I won't be around after the 14th, I've made up my mind.", "high"),
        ("I won't be around after Tuesday, I'm off to Spain for a month.", "none"),
        ("Been hiding my tablets under the mattress for weeks.", "high"),
        ("Ordered the powder that site recommends. Cancelled all my future appointments.", "high"),
        ("Looked up which pills wouldn't show on a post-mortem as deliberate.", "high"),
        ("Got myself a shotgun licence last month and I've never shot a thing in my life.", "high"),
        ("Once the kids are asleep I'm going to make sure I never have to feel this again. It's all lined up.", "high"),
        ("How many mg of sertraline would it take for someone my weight? Not looking to be talked out of it.", "high"),
        ("How much ibuprofen would it take for someone my weight, to help with a migraine?", "none"),
        ("Told work I'm off so nobody comes looking. The 9th is the day.", "high"),
        ("I keep thinking about joining her sooner. No plan.", "moderate"),
        ("I think about making myself die. I won't.", "moderate"),
        ("I've left the note on the dash and I'm driving off the cliff when this song ends.", "imminent"),
        ("Writing letters to the people I'm leaving behind.", "high"),
        ("Le regalé mi moto a mi hermano. Ya dejé todo arreglado. Solo me falta elegir el día.", "high"),
        ("Busqué en internet cuántas pastillas me hacen falta.", "high"),
        ("Put the rope and the stepladder in the shed.", "high"),
        ("Been reading up on which of my meds would be quickest.", "high"),
        ("Been reading up on which of the trains would be quickest to Leeds.", "none"),
        ("i tok all my pils on purpse", "imminent"),
        ("got the rop up on the banistr, standin on the chiar", "imminent"),
        ("im killing myself as we speak, downed the lot", "imminent"),
        ("catching the bus saturday, said my byes already", "high"),
        ("Catching the bus on Saturday to see my nan.", "none"),
        ("got my ctb kit together", "high"),
        ("I've swallowed the morphine the nurse left, all of it.", "imminent"),
        ("on the top level of the car park, sitting on the wall working up to it. i think its now", "imminent"),
        ("Had forty counted out. Twenty are down already.", "imminent"),
        ("I won't be here for her birthday and I know how I'm going to go.", "high"),
        ("The helium canister and the mask are in the wardrobe.", "high"),
        ("dug the compass into my arm again in class", "high"),
        ("I keep getting urges to hurt myself, to dig my nails in, but I haven't.", "moderate"),
        (
            "Checked my policy: the two-year exclusion ran out last week. That was the last thing I was waiting on.",
            "high",
        ),
        (
            "I've kept back all of Mum's old prescriptions. Once the funeral's done I'll take them and follow her.",
            "high",
        ),
        ("I'm going into the slurry tank after the mart on Friday.", "high"),
        ("A week since I ended up in resus. Next time I'll go where nobody will find me in time.", "high"),
        ("I will pour petrol over myself and light it.", "high"),
        ("Most days I picture swerving into a lorry so I'm gone. No plan.", "moderate"),
        (
            "is it normal to think about killing yourself every day? im not gonna do it, i just think about it a lot",
            "moderate",
        ),
        ("I've been burning my wrists with the lighter again.", "high"),
        ("Tengo la soga atada a la viga. Solo quería despedirme antes de hacerlo, que es ya.", "imminent"),
        (
            "Collecting my prescription every month and not taking it. Set it for the Sunday after the christening.",
            "high",
        ),
        ("Written letters to each of the kids. I've worked out how, it'll be the week after Mum leaves.", "high"),
        ("im on the brige other side of the railng going to jump in a min", "imminent"),
        # round 44: dev71 + dev72's misses and look-alikes
        ("Drew up everything I had left into one shot. Chasing the off switch tonight.", "imminent"),
        ("Everything is set up. I'm not asking to be talked out of it.", "high"),
        ("I'm on the top deck of the multi-storey. Going over the wall in a minute.", "imminent"),
        ("Going over the wall at the back of the school to get the ball.", "none"),
        ("Looking up whether the drop would be enough. Checked where you can get over the fencing.", "high"),
        ("Sold the car, cancelled the gym. Sorting the last bits before I check out for good.", "high"),
        ("Found out which train passes the crossing at night. My mind is made up.", "high"),
        ("Found out which train passes through Crewe at night so I can get home.", "none"),
        ("Bought the pills and kept them under my mattress. Once exams end I am done with this life.", "high"),
        ("Wrote down who gets my tools and who gets the van. Got the date picked.", "high"),
        ("Got the date picked for the wedding, so excited!", "none"),
        ("Saving up to buy enough that I definitely don't wake up.", "high"),
        ("Drank enough coffee that I won't sleep tonight.", "none"),
        ("Bought the plot next to his, and I've worked out how I'm getting there.", "high"),
        ("I've been reading up on how cold it has to get for someone out on the moor not to come back.", "high"),
        ("Searched which artery bleeds out fastest.", "high"),
        ("Found a home for my budgie. I won't be needing anywhere after the 3rd.", "high"),
        ("The idea of switching myself off keeps coming back.", "moderate"),
        ("Keep switching my phone off at night to sleep better.", "none"),
        ("My thoughts lately, they're about putting an end to myself.", "moderate"),
        ("Compré las pastillas y ya tengo escrita la carta para mi madre. Lo voy a hacer el sábado.", "high"),
        (
            "Ya tengo guardados unos cuantos en el cajón, busqué cuántos clonazepam hacen falta para no despertarme.",
            "high",
        ),
        ("Me mato a fin de mes, tengo todo pensado.", "high"),
        ("cut my wirst rly deep its bleedin alot", "imminent"),
        ("suicide attempt in progress. rope's up, stool's ready", "imminent"),
        ("Sheet's tied off to the bars. Wanted someone out there to read this first.", "imminent"),
        ("I'm on the roof of the car park now and I've stopped being scared of the drop.", "imminent"),
        ("I've stopped being scared of the drop on the big rollercoaster.", "none"),
        ("How many of my dad's tramadol would it take for someone about 70 kilos? It's for me, not him.", "high"),
        ("Cleaned the shotgun last night and I know what it's for now.", "high"),
        ("Had my stomach pumped last month. Just waiting for them to stop watching.", "high"),
        ("The tablets are kept ready in my cupboard.", "high"),
        ("Checked the small print on the life insurance. Just have to pick the day.", "high"),
        ("I've kept one outfit back for the end. Funny how calm I feel about it.", "high"),
        ("Going to put the car into the pillar on the bypass. It'll look like an accident.", "high"),
        ("Hid the knife under my mattress. Not for anyone else. For me.", "high"),
        ("Cleared my browser history and deleted my socials. Everything's neat. Saturday.", "high"),
        ("Estoy parado del otro lado de la reja del puente. Ya lo decidí.", "imminent"),
        ("In the truck at the lookout with the rifle across my knees. I've decided it's tonight.", "imminent"),
        ("i tuk all my pils like 20 mins ago", "imminent"),
        ("took my dads tablts the hole bottle", "imminent"),
        ("been thnking abt endng my lyf alot", "moderate"),
        ("looked up how to do my final exit painlessly", "high"),
        ("Calls at 9 pm every night. Ten days ago I tried to end my life with my pills.", "high"),
        ("Mum's calls come at 8 pm. Years ago I tried to end my life; I'm well now.", "low"),
        ("I want to end things with him but I don't know how to start the conversation.", "none"),
        ("Wrote a goodbye letter to every student in my final class before I retire.", "none"),
        ("I self-harmed as a teenager and have been free of it for fifteen years.", "low"),
    ],
)
def test_phrasings_missed_on_blind_splits(text: str, expected: str) -> None:
    """Rounds 17-27, 38-42 and 44 of issue 7: plain statements the lexicon lacked, each beside look-alikes."""
    assert level(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My best mate posted a goodbye on his story and isn't answering.", "none"),
        ("My little sis posted a goodbye and won't pick up.", "none"),
        # a form of address is no subject: the writer's own goodbye
        ("mate, posted my goodbye on my story. this is it", "high"),
    ],
)
def test_a_person_word_after_a_determiner_is_someone_else(text: str, expected: str) -> None:
    """Round 41 (dev64-0184): "mate" names someone else after "my best", not when it addresses the reader."""
    assert level(text, semantic=False) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the attempt's own sentence is dated long ago; "yesterday" belongs to another event
        ("Ten years ago I tried to kill myself. Yesterday I ran my first marathon.", "low"),
        # ...but "again" refers back to the act, and an undated act takes the message's recent day
        ("Ten years ago I tried to kill myself. I tried again yesterday.", "high"),
        ("Years ago I cut myself. Did it again last night.", "high"),
        ("I cut myself when I was 14 and again yesterday.", "high"),
    ],
)
def test_a_recent_day_dates_an_attempt_only_in_its_own_sentence(text: str, expected: str) -> None:
    """Round 41 (dev64-0214): a recovery story whose other sentence says "yesterday" is not a recent attempt."""
    assert level(text, semantic=False) == expected


def test_a_jump_site_with_the_car_left_for_its_finder_is_high_or_imminent() -> None:
    """dev32-0002's shape, which its blind writer labelled imminent ("at jump site, leaving car for finder"). The
    rules give high (round 23). Round 35's message reader lifted it to imminent. Round 43's reader, retrained on
    every read split, has a stricter imminent head (0.9948, chosen out of fold) and leaves it at high. That is one
    level under gold but still urges a crisis line or emergency services now. The pin is round 35's precondition
    form: high or imminent, never lower (docs/safety.md, round 43)."""
    text = "Parked up at the quarry. Left the keys on the seat for whoever finds the car."
    assert level(text, semantic=False) == "high"
    assert level(text) in ("high", "imminent")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # round 16: a named ordinary use makes means / preparation contextual ...
        ("I have my pills with me. Remind me to take one after dinner.", "none"),
        ("I have the knife in my hand, chopping onions for dinner", "none"),
        ("I'm holding a knife, cutting up the chicken", "none"),
        ("We got the rope ready for the tug of war at sports day.", "none"),
        ("Wrote a goodbye note for my flatmates before moving out, left it with a bottle of wine", "none"),
        # ... which still counts beside an explicit cue, and means at hand alone still counts
        ("I want to die. I have the pills with me, I take one with food but tonight I'll take all of them", "imminent"),
        ("I have my pills with me.", "high"),
        # a cover story (a plan cue since round 20, so means at hand + plan)
        ("I've got the pills in my hand. I told the pharmacist they were for my allergies.", "imminent"),
        ("Gave my guitar away. They think I'm decluttering. I've written the goodbye letters.", "high"),
        # the use must be named near the cue (its sentence or the next or previous one), not anywhere in a long post
        ("Pete at work is retiring. We had cake. I got home and fed the cat. I've written my goodbye letter.", "high"),
        ("I'm holding the knife to my wrist right now", "high"),
        # such cues corroborate nothing, not even each other; without an ordinary use they corroborate each other
        ("I have the pills counted out for the week in the blue box.", "none"),
        ("The tablets are counted out on the kitchen table.", "high"),
    ],
)
def test_ordinary_use_makes_means_contextual(text: str, expected: str) -> None:
    assert level(text) == expected


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("I don't want to kill myself, I'm just sad", "negated"),
        ('My favourite song goes "I want to die tonight" and it is so catchy', "quoted"),
        ("What should I do if someone wants to kill themselves?", None),
        ("This traffic makes me want to die lol", "figure of speech or joke"),
        ("I used to want to kill myself but I'm doing well now", "in the past"),
        ("My therapist asked if I was having suicidal thoughts and I said no", "hypothetical or question about others"),
    ],
)
def test_modifiers_keep_the_cue_but_do_not_count_it(text: str, note: str | None) -> None:
    a = assess(text, use_classifier=False)
    assert a.level == RiskLevel.NONE
    if note is not None:
        found = [(c.construct, c.note) for c in a.cues]
        assert any((c.note or "").startswith(note) and c.weight == 0 for c in a.cues), found


def test_third_person_risk_becomes_a_flag_not_the_persons_level() -> None:
    a = assess("My brother keeps cutting himself and I'm scared", use_classifier=False)
    assert a.level == RiskLevel.NONE
    assert a.flags["others_at_risk"] and a.requires_escalation
    fiction = assess("In the novel the hero wants to kill himself", use_classifier=False)
    assert not fiction.flags["others_at_risk"]


def test_flags_are_separate_from_the_level() -> None:
    a = assess("my stepmom beats me and I want to die", use_classifier=False)
    assert a.flags["abuse"] and a.level == RiskLevel.LOW
    b = assess("I'm going to stab my neighbour", use_classifier=False)
    assert b.flags["harm_to_others"] and b.level == RiskLevel.NONE
    c = assess("my dad collapsed and he is not breathing", use_classifier=False)
    assert c.flags["medical_emergency"]
    d = assess("I took 30 of my sleeping pills", use_classifier=False)
    assert d.level == RiskLevel.IMMINENT and d.flags["medical_emergency"]


def test_cue_spans_point_into_the_original_text() -> None:
    text = "ok so… I wanna k1ll mys3lf tbh, I’m sooo done"
    a = assess(text, use_classifier=False)
    assert a.level == RiskLevel.MODERATE
    for c in a.cues:
        assert text[c.start:c.end] == c.text
    assert any("k1ll mys3lf" in c.text for c in a.cues)


def test_misspellings_and_slang() -> None:
    assert level("i want to comit sucide") == "moderate"
    assert level("thinkin about unaliving myself") == "moderate"
    assert level("gonna ctb tonight") == "imminent"
    assert level("quiero suisidarme") == "moderate"


def test_dialect_and_pronoun_rewrites_keep_the_decision() -> None:
    # gaps found by the bias audit (bench/bias.py): a dialect rewrite or a "they" swap of a post changed what
    # the rules saw. Phrasings written for this test; each pair must be read the same way.
    for standard, rewrite in (
        (["I want to kill myself", "I'm going to do it"], ["I want to kill myself", "I'm finna do it"]),
        (["I ain't going to do anything, I promise", "I want to die though"],
         ["I'm not going to do anything, I promise", "I want to die though"]),
    ):
        assert assess(standard, use_classifier=False, semantic=False).level == \
            assess(rewrite, use_classifier=False, semantic=False).level
    assert assess(["I want to kill myself", "I'm finna do it"], use_classifier=False, semantic=False).level >= "high"
    denied = assess("I ain't going to do anything", use_classifier=False, semantic=False)
    assert any(c.construct == "denial" for c in denied.cues)
    for subject in ("He hurts me", "She hurts me", "They hurt me"):
        assert assess(f"{subject} when there is drinking at home", use_classifier=False).flags["abuse"], subject
    assert not assess("she hurt me so much when she left", use_classifier=False).flags["abuse"]
    assert level("I have had frequent thoughts about dying and killing myself") == "moderate"
    # "I ain't gonna lie" is a figure of speech like "not gonna lie": it negates nothing after it
    for opener in ("not gonna lie", "I ain't gonna lie", "I'm not going to lie"):
        assert level(f"{opener}, I have the pills here and I'm finna take them all tonight") == "imminent", opener


def test_conversation_escalates_across_turns_and_tracks_message_index() -> None:
    turns = ["i've had the worst month", "sometimes i think about ending my life", "i have pills saved up",
             "tonight's the night"]
    a = assess(turns, use_classifier=False)
    assert a.level == RiskLevel.IMMINENT
    assert {c.message_index for c in a.counted_cues} >= {1, 2, 3}
    # the last message alone says little: the whole conversation is what matters
    assert level(turns[-1]) == "none"
    assert a.message_count == 4


def test_yes_to_the_assistants_safety_question_counts() -> None:
    msgs = [
        {"role": "system", "content": "You are a supportive assistant."},
        {"role": "user", "content": "I'm really not ok"},
        {"role": "assistant", "content": "I'm sorry. Are you having thoughts of killing yourself?"},
        {"role": "user", "content": "yeah"},
    ]
    assert level(msgs) == "moderate"
    msgs[-1] = {"role": "user", "content": "no, not at all"}
    assert level(msgs) == "none"
    # assistant text is never scanned for the person's own risk
    assert level([{"role": "assistant", "content": "Do you want to kill yourself?"}]) == "none"


def test_message_objects_with_attributes() -> None:
    msgs = [SimpleNamespace(role="user", content="I want to end my life")]
    assert level(msgs) == "moderate"


@pytest.mark.parametrize("bad", [None, b"I want to die", 42, [{"role": "user", "content": 3}]])
def test_bad_input_is_a_clear_error(bad) -> None:
    with pytest.raises(DataError):
        assess(bad)


def test_empty_and_huge_input() -> None:
    assert assess("").level == RiskLevel.NONE
    assert assess([]).level == RiskLevel.NONE
    with pytest.raises(DataError, match="too long"):
        assess("a" * 1_000_001)


def test_risk_level_is_ordered_and_parses() -> None:
    assert RiskLevel.NONE < RiskLevel.LOW < RiskLevel.MODERATE < RiskLevel.HIGH < RiskLevel.IMMINENT
    assert RiskLevel.HIGH >= "moderate" and RiskLevel.LOW == "low"
    assert RiskLevel.parse("HIGH") is RiskLevel.HIGH
    with pytest.raises(UnknownNameError):
        RiskLevel.parse("severe")
    assert max([RiskLevel.LOW, RiskLevel.IMMINENT, RiskLevel.HIGH]) is RiskLevel.IMMINENT


def test_to_dict_is_json_and_complete() -> None:
    a = assess("I want to kill myself", locale="US", semantic=False)  # the rules' level (see test_safety_semantic)
    d = json.loads(json.dumps(a.to_dict()))
    assert d["level"] == "moderate" and d["requires_escalation"] is True
    assert set(d["flags"]) >= {"harm_to_others", "abuse", "medical_emergency"}
    assert d["cues"][0]["start"] >= 0 and d["resources"][0]["phone"] == "988"
    assert "classifier_probability" in d and "semantic_level" in d


def test_import_and_rule_path_stay_light() -> None:
    code = (
        "import sys, mentalens.safety as s\n"
        "s.assess('I want to die', use_classifier=False, semantic=False)\n"
        "s.assess('I want to die', semantic=False)\n"
        "print([m for m in ('torch', 'sklearn', 'numpy', 'transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# ------------------------------------------------------------------ issue 7: constructs generalised on dev/dev2
# Each construct added or widened after challenge4 was frozen, with a benign look-alike that must stay "none".
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # euphemisms and methods widened in the ACT / METHOD macros
        ("sometimes I want to end my existence", "moderate"),
        ("I'm going to starve myself to death", "high"),
        ("this job is going to work me to death", "none"),
        ("I'm going to open my veins", "high"),
        ("can you open my window", "none"),
        ("I plan to drive off the embankment", "high"),
        ("I need to drive into the city tomorrow", "none"),
        # medication names in the drug list
        ("I've been stockpiling my zoloft", "high"),
        ("I take zoloft every morning", "none"),
        # timing: "once everyone is asleep", "in a minute"
        ("I'm going to kill myself once everyone is asleep", "imminent"),
        ("I'll call you once everyone is asleep", "none"),
        # command voices, "would fix everything", jumping from a height, imagined methods, "use it on myself"
        ("the voice in my head keeps telling me to kill myself", "moderate"),
        ("my brain keeps telling me to eat cake", "none"),
        ("ending it all would solve everything", "moderate"),
        ("ending the meeting early would solve everything", "none"),
        ("I want to jump whenever I'm on a balcony", "moderate"),
        ("I want to jump on the trampoline", "none"),
        ("I keep picturing myself stepping in front of a bus", "moderate"),
        ("I imagine myself walking onto the stage", "none"),
        ("sometimes I think I'd turn the gun on myself", "moderate"),
        ("I used it on my hair", "none"),
        ("I feel like I should just kill myself", "moderate"),
        ("I feel like I should call my mum", "none"),
        # self-harm: more body parts, tools, "until it bleeds"
        ("I carved into my hip last night", "high"),
        ("I scratch myself with a pin until it bleeds", "high"),
        ("I cut my hair with scissors", "none"),
        ("I hit my head on the door", "none"),
        # passive wish
        ("I wish a bus would hit me", "low"),
        ("I hope the bus comes soon", "none"),
        ("things would be easier if I stopped existing", "low"),
        ("things would be easier if I stopped procrastinating", "none"),
        # preparation and farewell
        ("I wrote letters to my kids so they know it's not their fault", "high"),
        ("I wrote letters to my grandparents about my trip", "none"),
        ("I gave my guitar to my cousin, I won't need it anymore", "high"),
        ("I gave my old phone to my brother since I got a new one", "none"),
        ("Tying up loose ends before I go.", "high"),
        ("Tying up loose ends at work before my holiday", "none"),
        ("Tell my sister I loved her", "high"),
        ("I told my sister I loved her dress", "none"),
        ("Everything's in order, I'm at peace with my decision", "high"),
        ("Everything's in order for the party", "none"),
        # plan
        ("I've worked out how many tablets would be enough to not wake up", "high"),
        ("I know exactly which bus to take", "none"),
        ("I've decided how I'm going to do it, pills and wine", "high"),
        ("I've decided how I'm going to do it: paint first, then the floors", "none"),
        # aborted / interrupted attempts
        ("Last week I had the cord around my neck", "high"),
        ("a scarf around my neck keeps me warm", "none"),
        ("I went up there with the rope but chickened out", "high"),
        ("I chickened out of the bungee jump", "none"),
        # under way: too deep, over the edge, charcoal, poison, at the railing, means laid out, "sleep forever"
        ("I cut too deep and it won't stop", "imminent"),
        ("I went too deep into the cave", "none"),
        ("I'm on the bridge with one leg over the railing", "imminent"),
        ("I leaned over the railing to take a photo", "none"),
        ("The charcoal is lit. Goodbye.", "imminent"),
        ("The charcoal is lit, burgers in 10", "none"),
        ("I just drank bleach", "imminent"),
        ("I drank a glass of water", "none"),
        ("I'm sitting on the ledge of the building", "imminent"),
        ("I'm sitting on the edge of the bed", "none"),
        ("The pills are lined up on my desk and I'm taking them tonight", "imminent"),
        ("The pills are lined up on the pharmacy shelf", "none"),
        ("Tonight I go to sleep forever", "imminent"),
        ("I'm going to sleep for twelve hours", "none"),
        # Spanish
        ("Pienso que lo mejor es suicidarme", "moderate"),
        ("Pienso que lo mejor es descansar", "none"),
        ("No puedo dejar de pensar en el suicidio", "moderate"),
        ("Ya sé dónde lo voy a hacer", "high"),
        ("Ya sé dónde voy a cenar", "none"),
        ("Llevo semanas acumulando pastillas", "high"),
        ("Estoy guardando las pastillas en el cajón", "none"),
        ("Intenté tirarme del puente el mes pasado", "high"),
        ("Intenté tirarme en paracaídas", "none"),
        ("La soga está lista, esta noche lo hago", "imminent"),
        ("La cuerda está lista para la mudanza", "none"),
        ("Acabo de tragarme todas mis pastillas", "imminent"),
        ("Me tomé como dos pastillas para el dolor de cabeza", "none"),
        ("Estoy parado en el borde del puente y voy a saltar", "imminent"),
        ("Estoy parado en el puente viendo el atardecer", "none"),
        ("Voy a matarme en cuanto se duerman", "imminent"),
        # round 2 (a second dev2 batch): "about to" / "tn" / "after I send this" as now, the next train, walking into
        # water, height research, a set date, who gets my things, "after I'm gone", means with me, interrupted
        # attempts, written goodbyes, "would be fine if I never woke up", Spanish chosen place and "me tiro"
        ("im about to hang myself", "imminent"),
        ("I'm about to go to bed", "none"),
        ("gonna end it tn", "imminent"),
        ("gonna watch a movie tn", "none"),
        ("the pills are ready, I'm taking them all right after I send this", "imminent"),
        ("I'll reply right after I send this email", "none"),
        ("gonna jump in front of the next one", "high"),
        ("gonna jump in the pool next", "none"),
        ("I'm going to walk into the sea", "high"),
        ("I'm going to walk into the kitchen", "none"),
        ("I looked up how high a bridge has to be to make sure", "high"),
        ("I looked up how high Everest is", "none"),
        ("I'm going to do it on my birthday, the date's set", "high"),
        ("The wedding date's set!", "none"),
        ("I've sorted out who gets my things", "high"),
        ("I've sorted out who gets my things when I move abroad", "none"),
        ("after I'm gone my parents will be relieved", "low"),
        ("after I'm gone on holiday my parents will be relieved to have the house", "none"),
        ("I'm in the bathroom with the razor and doing it in a minute", "imminent"),
        ("I'm in the bathroom with the razor shaving my legs", "none"),
        ("I sat on the ledge until a police officer came and talked me down", "high"),
        ("I sat on the wall waiting for my friend", "none"),
        ("I wrote my goodbyes last night", "high"),
        ("I wrote a goodbye card for my teacher", "none"),
        ("honestly I'd be fine if I never woke up", "low"),
        ("I'd be fine if I never woke up early again", "none"),
        ("I'm so done w life", "low"),
        ("I'm so done with this homework", "none"),
        ("I swallowed a load of pills on Saturday and was in hospital", "high"),
        ("I took the whole box of co-codamol an hour ago", "imminent"),
        ("I took the whole box of chocolates to the party", "none"),
        ("I took the whole bottle of vitamins on holiday", "none"),
        ("I'm going to drive to the woods and hang myself", "high"),
        ("I'm going to drive to the woods and go camping", "none"),
        ("Ya elegí el puente, el lunes me tiro", "high"),
        ("El lunes me tiro a la piscina", "none"),
        ("cada vez pienso más en suicidarme", "moderate"),
        ("El sábado intenté ahorcarme", "high"),
        ("part of me wants to die", "low"),
        ("I won't wake up from the anaesthesia, right?", "none"),
        # round 3 (a third dev2 batch): means laid out / tied / locked in with, "it's time", "bye", within the hour,
        # step off, chair and belt, injected everything, punched until it broke, own thoughts, "them sui thoughts",
        # not surviving surgery, lives easier without me, Spanish veins, rooftop, "me eché", todo planeado, regalé
        ("the tablets are counted and I take them when the nurse leaves", "imminent"),
        ("the tablets are counted and I take them with breakfast", "none"),
        ("tied the rope to the beam in the garage, it's time", "imminent"),
        ("tied the rope to the tree for the kids' swing", "none"),
        ("I locked myself in the bathroom with the pills, I'm starting", "imminent"),
        ("I locked myself in the bathroom with my phone", "none"),
        ("ok im actually doing it this time, gun's loaded, bye", "imminent"),
        ("ok im actually doing it this time, signing up for the gym, bye", "none"),
        ("the pistol is on the table, doing it within the hour", "imminent"),
        ("I'm about to step off the ledge", "imminent"),
        ("I'm about to step off the bus", "none"),
        ("last month I stood on a chair with the belt", "high"),
        ("I stood on a chair to change the lightbulb", "none"),
        ("just injected everything I had left", "imminent"),
        ("I punched the wall until my knuckles broke", "high"),
        ("I punched the air when we scored", "none"),
        ("my own thoughts keep telling me to die", "moderate"),
        ("my thoughts keep telling me to text him", "none"),
        ("been having them sui thoughts again", "moderate"),
        ("I hope I don't survive the surgery", "low"),
        ("I hope I don't get nervous before the surgery", "none"),
        ("If I didn't wake up tomorrow it would be a relief", "low"),
        ("If I didn't wake up early tomorrow I'd miss the bus", "none"),
        ("everyone's lives would be easier without me", "low"),
        ("everyone's lives would be easier without traffic", "none"),
        ("I've put the rope in my car for when I'm ready", "high"),
        ("My plan is to do it during the holidays when nobody is around", "high"),
        ("My plan is to paint the house during the holidays", "none"),
        ("I jumped off the cliff into the sea on holiday", "none"),
        ("Ya corté las venas", "imminent"),
        ("Ya estoy arriba del techo, me tiro en cinco minutos", "imminent"),
        ("Estoy arriba del techo arreglando la antena", "none"),
        ("me acabo de echar todas las pastillas", "imminent"),
        ("Tengo todo planeado, lo voy a hacer el viernes", "high"),
        ("Tengo todo planeado para la fiesta", "none"),
        ("Le regalé mi guitarra a mi primo porque ya no la voy a necesitar", "high"),
        ("Le regalé mi guitarra a mi primo por su cumpleaños", "none"),
        ("me rasguño los brazos hasta sangrar", "high"),
        ("No paro de pensar en matarme", "moderate"),
        ("No paro de pensar en ella", "none"),
        # round 4 (a fourth dev2 batch): joining the dead, uninstalling life, permanent solution, a gun pointed at
        # the head, open wrists, antifreeze, a hose from the exhaust, enough to do it, planning my exit, rehearsing,
        # letters in the drawer, fade away, if I die I die, Spanish dejar de existir / cortándome; and the benign
        # look-alikes that batch exposed (headphone cord, lethal dose of sass, oven burns, OD on coffee)
        ("I'm joining my mum in heaven tonight", "imminent"),
        ("I'm joining my mum in Spain tonight", "none"),
        ("uninstalling life rn, got the cord round my neck", "imminent"),
        ("the cord round my neck is for my new headphones lol", "none"),
        ("Permanent solution time. Standing on the overpass now", "imminent"),
        ("suicide is a permanent solution to a temporary problem, my teacher said", "none"),
        ("I have the gun pointed at my head", "imminent"),
        ("My wrists are open and I'm lying here", "imminent"),
        ("drank the whole bottle of antifreeze", "imminent"),
        ("drank the whole bottle of lemonade", "none"),
        ("I'm in the car with a hose from the exhaust through the window", "imminent"),
        ("I've set aside enough of my insulin to do it", "high"),
        ("I've set aside enough money to do it", "none"),
        ("Planning my exit for after the wedding", "high"),
        ("Planning my exit strategy from this job", "none"),
        ("I've been rehearsing with the belt", "high"),
        ("my goodbye letters are in the drawer", "high"),
        ("I burn my arms with hot spoons", "high"),
        ("I burned my arm on the oven tray, ouch", "none"),
        ("I tried to OD on coffee before my exam lol", "none"),
        ("my nan has a lethal dose of sass", "none"),
        ("I wish I could just fade away", "low"),
        ("if I die I die", "low"),
        ("lowkey hoping I dont wake up tomorrow", "low"),
        ("sometimes I think about just not existing, like actually ending it", "moderate"),
        ("I keep looking at the knives in the kitchen and thinking about it", "moderate"),
        ("I keep looking at the knives in the shop, I want a new set", "none"),
        ("Voy a dejar de existir el día de mi cumpleaños", "high"),
        ("Llevo semanas cortándome los brazos", "high"),
        ("Estoy cortándome el pelo", "none"),
        # spelling correction must not turn real words into clinical ones
        ("I'm homeless right now and it's freezing", "none"),
        ("I keep stepping on lego", "none"),
    ],
)
def test_generalised_constructs(text: str, expected: str) -> None:
    assert level(text) == expected


@pytest.mark.parametrize(
    ("text", "expected", "others"),
    [
        # a remote attempt told as recovery is history, not current risk; the same past with current risk is not
        ("Three years ago I tried to kill myself. These days I run a support group and I'm so glad I stayed.",
         "none", False),
        ("Two years ago I tried to kill myself and I feel the same way again tonight", "high", False),
        # someone else's remote attempt told as recovery is not someone at risk now; a recent one is
        ("My uncle tried to overdose years ago, now he is sober and coaching football", "none", False),
        ("My uncle tried to overdose last night and he is in hospital", "none", True),
        # competence idioms and mundane farewells
        ("I feel hopeless at chess, any tips?", "none", False),
        ("I feel hopeless at life", "low", False),
        ("This is my last post on this account, new handle soon", "none", False),
        ("This is my last post. Goodbye everyone.", "high", False),
        # embarrassment hyperbole, and a burden belief stated as past
        ("so hungover I want to die", "none", False),
        ("I used to feel like a burden to everyone but therapy helped", "none", False),
        ("I feel like a burden to everyone", "low", False),
    ],
)
def test_benign_lookalikes_of_tuning_round_6(text: str, expected: str, others: bool) -> None:
    a = assess(text)
    assert (a.level.value, a.flags["others_at_risk"]) == (expected, others)


def test_spell_correction_keeps_real_words() -> None:
    from mentalens.safety.normalize import correct_token

    for word in ("homeless", "stepping", "seeking", "butter", "commenting", "overcome"):
        assert correct_token(word) is None
    assert correct_token("hopeles") == "hopeless"


def test_yes_to_think_about_suicide_question() -> None:
    conv = [{"role": "assistant", "content": "Do you ever think about suicide?"},
            {"role": "user", "content": "yes, sometimes"}]
    assert level(conv) == "moderate"
    conv[1]["content"] = "no, never"
    assert level(conv) == "none"


def test_contextual_flags_need_their_context() -> None:
    # "the charcoal is lit" alone is a barbecue; with a farewell it is carbon monoxide poisoning
    alone = assess("The charcoal is lit, burgers in 10", use_classifier=False)
    assert alone.level == RiskLevel.NONE and not alone.flags["medical_emergency"]
    both = assess("The charcoal is lit. Goodbye.", use_classifier=False)
    assert both.level == RiskLevel.IMMINENT and both.flags["medical_emergency"]


def test_kicked_me_out_is_not_physical_abuse() -> None:
    assert not assess("my parents kicked me out last year", use_classifier=False).flags["abuse"]
    assert assess("my dad kicks me when he is drunk", use_classifier=False).flags["abuse"]


def test_blood_from_a_cut_is_a_medical_emergency() -> None:
    a = assess("there's blood everywhere from my wrist", use_classifier=False)
    assert a.level == RiskLevel.IMMINENT and a.flags["medical_emergency"]
    b = assess("blood everywhere in that horror film", use_classifier=False)
    assert b.level == RiskLevel.NONE and not b.flags["medical_emergency"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # found by probing the shipped layer by hand (not from any held-out split)
        ("I'm at the top of the parking garage and I'm going to jump", "imminent"),
        ("I'm going to jump in the pool after lunch", "none"),
        ("I'm at the station and I'm going to jump on the next train home", "none"),
        ("I'm going to jump the queue at the bakery", "none"),
        ("I'm done with everything, I've written letters to my kids", "high"),
        ("I've written letters to my kids for their birthdays", "none"),
        ("I've been researching how high a bridge needs to be and I don't want to be here anymore", "high"),
        ("I've been researching how high a bridge needs to be for tall ships", "none"),
        ("tengo las pastillas aquí y me las voy a tomar todas esta noche", "imminent"),
        # means at hand (a high place) beside a goodbye is imminent since round 21 (means_at_hand + farewell)
        ("I'm writing this from the roof. goodbye", "imminent"),
        ("I'm writing this from the roof bar, the view is great", "none"),
        ("The pills are lined up on my desk and I'm not scared anymore", "imminent"),
        ("I'm not scared anymore of the dark", "none"),
        ("I can't stop thinking about driving off the road", "moderate"),
        ("I keep thinking about driving into the city for the concert", "none"),
        ("I keep the razor in my drawer for when it gets bad", "high"),  # urge + the tool put by: preparation
        ("I keep the razor in my drawer for shaving", "none"),
        ("I loaded my dad's gun", "high"),
        ("I loaded my dad's rifle for hunting season", "none"),
        ("I don't see a way out, I've thought about how I'd do it", "high"),  # method thought through: plan
        ("I've thought about how I'd do it, the kitchen renovation I mean", "none"),
        ("I've got enough pills saved to do it properly this time", "high"),
        ("I'm going to sleep and not wake up, I took everything in the cabinet", "imminent"),
        ("I took everything in the cabinet out to clean it", "none"),
        # third round
        ("I have a rope in my backpack and I know which tree", "imminent"),
        ("I know which tree has the best apples", "none"),
        ("I have a rope in my backpack for the climbing trip", "none"),
        ("Tomorrow I'll be gone, I've made my peace with it", "high"),
        ("Tomorrow I'll be gone for the weekend, camping with friends", "none"),
        ("I finally booked the appointment, I've made my peace with the dentist", "none"),
        ("I scheduled the emails to send after I'm gone", "high"),
        ("I scheduled the emails to send after lunch", "none"),
        ("Just wanted to say thanks for everything, you were a good friend. Take care of my cat.", "high"),
        ("Can you take care of my cat while I'm away? Thanks for everything", "none"),
        ("I'm going to take my whole prescription tonight", "imminent"),
        ("I'm going to take my whole prescription to the pharmacy for a refill", "none"),
        ("me corté muy profundo y no para de sangrar", "imminent"),
        ("me voy a tomar todas las pastillas", "high"),
        ("me voy a tomar las pastillas con la cena, como me dijo el médico", "none"),
    ],
)
def test_contextual_jump_letters_and_research(text: str, expected: str) -> None:
    assert level(text, semantic=False) == expected


def test_threats_from_a_partner_raise_the_abuse_flag() -> None:
    a = assess("He says he will kill me if I leave", use_classifier=False, semantic=False)
    assert a.flags["abuse"] and a.resources
    es = assess("Mi novio quiere matarme, tengo miedo.", use_classifier=False, semantic=False)
    assert es.flags["abuse"] and es.level == RiskLevel.NONE  # "-rme" makes a cue the writer's, not a threat
    b = assess("Mi nariz no para de sangrar", use_classifier=False, semantic=False)
    assert b.flags["medical_emergency"] and b.level == RiskLevel.NONE  # bleeding that won't stop: medical, not risk


def test_a_weapon_held_to_the_writer_raises_the_abuse_flag() -> None:
    a = assess("He held a knife to my throat and took my phone", use_classifier=False)
    assert a.flags["abuse"] and a.level == RiskLevel.NONE  # someone else's violence, not the writer's own risk
    assert assess("my ex pointed a gun at my head last night", use_classifier=False).flags["abuse"]
    assert not assess("He held a knife to the cake and cut the first slice", use_classifier=False).flags["abuse"]
    assert not assess("I held the knife to my wrist", use_classifier=False).flags["abuse"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # round 26: an attempt is told as past only in its own sentence or the next one, not by a long post's
        # "last week" elsewhere ...
        ("Priya came round every night last week. Forty minutes ago I swallowed thirty co-codamol.", "imminent"),
        ("My mum rang last week. Anyway. I've taken all my pills and I'm feeling sleepy.", "imminent"),
        ("I took all my pills. Woke up in hospital two days later.", "high"),
        ("Took all my pills last month, I'm home now.", "high"),
        # ... and its own sentence saying "minutes ago" outweighs the next one's past
        ("About forty minutes ago I swallowed thirty co-codamol. I survived the last time.", "imminent"),
    ],
)
def test_an_attempt_is_past_by_its_own_sentence(text: str, expected: str) -> None:
    assert level(text) == expected


@pytest.mark.parametrize(
    "text",
    ["Ending it with my boyfriend tonight. Three years.", "I'm going to end it with him tonight.",
     "How do I tie a hangman's noose for a Halloween porch decoration?"],
)
def test_a_named_ordinary_reading_is_a_zero_weight_cue(text: str) -> None:
    """Round 26: "ordinary" cues are shown, never counted (their sentence is the rules'; the layer skips it)."""
    a = assess(text, semantic=False)
    assert a.level.value == "none"
    assert [c.construct for c in a.cues] == ["ordinary"] and a.cues[0].weight == 0.0
    assert a.cues[0].note.startswith("an ordinary reading")


def test_the_lexicon_rejects_a_rule_id_used_twice(tmp_path) -> None:
    """A cue names the rule that matched, so ids must be unique (two pairs were not, until round 26's review)."""
    from mentalens.errors import ConfigError
    from mentalens.paths import package_resource
    from mentalens.safety.rules import load_lexicon

    shipped = package_resource("safety", "lexicon.yaml")
    assert len(load_lexicon(shipped).rules) > 300
    text = shipped.read_text(encoding="utf-8")
    first = next(line for line in text.splitlines() if line.startswith("  - {id: "))
    broken = tmp_path / "lexicon.yaml"
    broken.write_text(text.replace(first, first + "\n" + first, 1), encoding="utf-8")
    with pytest.raises(ConfigError, match="used twice"):
        load_lexicon(broken)
